package cli

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"

	"metacircular.net/mcp/api"
)

// palette colours what the CLI prints for people: states and plan
// symbols. The zero palette prints plain text.
//
// Colour is on only when the output is a terminal, NO_COLOR
// (no-color.org) is unset or empty, and TERM is not "dumb";
// CLICOLOR_FORCE=1 forces it on for a pipe (e.g. `| less -R`), but
// NO_COLOR still wins.
type palette struct{ on bool }

// paletteFor decides for one output stream.
func paletteFor(w io.Writer) palette {
	if os.Getenv("NO_COLOR") != "" {
		return palette{}
	}
	if os.Getenv("CLICOLOR_FORCE") != "" && os.Getenv("CLICOLOR_FORCE") != "0" {
		return palette{on: true}
	}
	if os.Getenv("TERM") == "dumb" {
		return palette{}
	}
	return palette{on: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal), without
// an ioctl: good enough to tell a terminal from a pipe or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// SGR colour codes, all two digits so every coloured cell carries the same
// number of invisible bytes (see state).
const (
	sgrRed    = "31"
	sgrGreen  = "32"
	sgrYellow = "33"
	sgrPlain  = "39" // the terminal's default colour
)

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// state colours a service, component or reconcile state. Every value,
// plain ones included, is wrapped in an escape of the same length, so
// tabwriter (which counts bytes) still lines the columns up.
func (p palette) state(s string) string {
	return p.paint(stateColour(s), s)
}

func stateColour(s string) string {
	switch s {
	case api.StateRunning, api.ResultOK, api.ResultSkipped:
		return sgrGreen
	case api.StateFailed, api.StateInvalid, api.ComponentCrashLoop, api.ComponentMissing:
		return sgrRed
	case api.StateDegraded, api.ResultPartial, api.StateDeploying, api.ComponentRestarting, api.StateWaiting:
		return sgrYellow
	}
	return sgrPlain
}

// eventColour picks the colour of an event kind in `mcp events`.
func eventColour(kind string) string {
	switch kind {
	case "failure", "invalid", "crash-loop", "quarantine", "revert":
		return sgrRed
	case "drift", "restart":
		return sgrYellow
	case "deploy":
		return sgrGreen
	}
	return sgrPlain
}

// plan colours the symbol of each step line of a rendered plan
// ("  + port ...", "  ~ ...", "  - ...", "  = ..."); the renderer itself
// stays colourless, so the plan's text is the same everywhere.
func (p palette) plan(rendered []byte) []byte {
	if !p.on {
		return rendered
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(rendered))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 4 && strings.HasPrefix(line, "  ") && line[3] == ' ' {
			code := ""
			switch line[2] {
			case '+':
				code = sgrGreen
			case '~':
				code = sgrYellow
			case '-':
				code = sgrRed
			}
			if code != "" {
				line = "  " + p.paint(code, line[2:3]) + line[3:]
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
