package spec

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxLabel   = 63  // RFC 1123
	maxDNSName = 253 // RFC 1035, without the trailing dot
)

// labelProblem says why s is not a lowercase RFC 1123 DNS label, or "".
// Service, component, route and node names all are labels: they end up in
// hostnames, container names and environment variable names.
func labelProblem(s string) string {
	if s == "" {
		return "it is empty"
	}
	if !utf8.ValidString(s) {
		return "it is not valid UTF-8"
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 'A' && c <= 'Z':
			return fmt.Sprintf("it has uppercase letters (use %q)", strings.ToLower(s))
		case c == '_':
			return fmt.Sprintf("it has an underscore (use a hyphen: %q)", strings.ReplaceAll(s, "_", "-"))
		case c == '.':
			return "it has a dot"
		case c >= utf8.RuneSelf && (unicode.In(c, unicode.Mn, unicode.Me, unicode.Cf) || !unicode.IsPrint(c)):
			// Shown by code point only: quoted, a combining mark would
			// merge with the quote and a format character shows nothing.
			return fmt.Sprintf("it has the invisible non-ASCII character %U (a combining mark or format character)", c)
		case c >= utf8.RuneSelf:
			return fmt.Sprintf("it has the non-ASCII character %q (%U), which may look like a letter but is not one", c, c)
		default:
			return fmt.Sprintf("it has the character %q", c)
		}
	}
	if len(s) > maxLabel {
		return fmt.Sprintf("it is %d characters long, more than %d", len(s), maxLabel)
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "it starts or ends with a hyphen"
	}
	return ""
}

// labelRule is appended to every label error so it says what is allowed.
const labelRule = "names are lowercase DNS labels: a-z, 0-9 and '-', at most 63 characters, not starting or ending with '-'"

// checkLabel reports s at path when it is not a DNS label.
func checkLabel(r *report, path, what, s string) bool {
	if p := labelProblem(s); p != "" {
		r.errorf(path, "%s %s is not a valid name: %s; %s", what, quoteShort(s), p, labelRule)
		return false
	}
	return true
}

// dnsNameProblem says why s is not a lowercase DNS name, or "".
func dnsNameProblem(s string) string {
	if s == "" {
		return "it is empty"
	}
	if strings.HasSuffix(s, ".") {
		return "it ends with a dot (write it without the trailing dot)"
	}
	if len(s) > maxDNSName {
		return fmt.Sprintf("it is %d characters long, more than %d", len(s), maxDNSName)
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" {
			return "it has an empty label (two dots in a row)"
		}
		if p := labelProblem(l); p != "" {
			return fmt.Sprintf("label %s: %s", quoteShort(l), p)
		}
	}
	return ""
}

// under reports whether name is suffix or a name below it.
func under(name, suffix string) bool {
	return name == suffix || strings.HasSuffix(name, "."+suffix)
}

// quoteShort quotes s for a message, cutting very long values so one bad
// key cannot blow up the output.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
