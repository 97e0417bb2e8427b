package spec

import (
	"fmt"
	"strconv"
)

// Definitions are read by people: in review, in `mcp plan`, in status and
// in logs. A character that changes how text is displayed, rather than
// what it says, lets a change look like something else there, so every
// key and string value of a file is checked for them:
//
//   - Unicode bidirectional controls (the "Trojan Source" characters):
//     they reorder the text around them, so a reviewer or a plan shows a
//     value other than the one that runs;
//   - control characters other than tab, newline and carriage return:
//     a terminal acts on them (ESC starts escape sequences that can move
//     the cursor or rewrite earlier lines of a plan), and NUL silently
//     cuts an environment value or argument short.
//
// Printable non-ASCII text stays allowed in values (a greeting, a path);
// names are held to ASCII by their own rules (names.go).
func checkText(r *report, path string, v any) {
	switch v := v.(type) {
	case string:
		if prob := textProblem(v); prob != "" {
			r.errorf(path, "%s", prob)
		}
	case map[string]any:
		for k, e := range v {
			kp := joinPath(path, k)
			if prob := textProblem(k); prob != "" {
				r.errorf(kp, "the key %s", prob)
			}
			checkText(r, kp, e)
		}
	case []any:
		for i, e := range v {
			checkText(r, indexPath(path, i), e)
		}
	case []map[string]any:
		for i, e := range v {
			checkText(r, indexPath(path, i), e)
		}
	}
}

// TextProblem says why s holds a character that changes how text is
// displayed (a bidirectional control, a control character other than tab,
// newline and carriage return), or "". The agent's configuration is held
// to the same rule.
func TextProblem(s string) string { return textProblem(s) }

// textProblem says which display-changing character s holds, or "".
func textProblem(s string) string {
	for _, c := range s {
		switch {
		case isBidiControl(c):
			return fmt.Sprintf("contains %U, an invisible bidirectional control that changes how the text around it is displayed, so it would be shown as something other than what runs; remove it", c)
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r', c == 0x7f, c >= 0x80 && c <= 0x9f:
			return fmt.Sprintf("contains the control character %U (%s); a terminal showing it in a plan or status would act on it, and NUL cuts values short; remove it", c, strconv.QuoteRune(c))
		}
	}
	return ""
}

// isBidiControl reports the characters of Unicode's bidirectional
// algorithm that are invisible and reorder text: ALM, LRM, RLM, the
// embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and the isolates
// (LRI, RLI, FSI, PDI).
func isBidiControl(c rune) bool {
	switch {
	case c == 0x061c, c == 0x200e, c == 0x200f:
		return true
	case c >= 0x202a && c <= 0x202e:
		return true
	case c >= 0x2066 && c <= 0x2069:
		return true
	}
	return false
}
