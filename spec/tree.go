package spec

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The files are decoded into a generic tree and checked key by key rather
// than decoded into structs: a struct decode stops at the first type
// mismatch and loses the array indices of the key path, while the brief of
// this package is to report every problem of a file with its exact path.

// report collects the diagnostics of one file.
type report struct {
	file    string
	service string
	diags   Diagnostics
}

func (r *report) errorf(path, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{File: r.file, Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError, Service: r.service})
}

func (r *report) warnf(path, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{File: r.file, Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityWarning, Service: r.service})
}

func (r *report) failed() bool { return r.diags.HasErrors() }

// MaxFileDiagnostics caps the diagnostics shown per file: a generated file
// with thousands of bad entries would otherwise bury every other problem.
const MaxFileDiagnostics = 100

// capped returns the file's diagnostics sorted, cut to MaxFileDiagnostics
// plus one that counts the rest.
func (r *report) capped() Diagnostics {
	sortDiagnostics(r.diags)
	if len(r.diags) <= MaxFileDiagnostics {
		return r.diags
	}
	rest := r.diags[MaxFileDiagnostics:]
	out := append(Diagnostics(nil), r.diags[:MaxFileDiagnostics]...)
	sev := SeverityWarning
	if rest.HasErrors() {
		sev = SeverityError
	}
	out = append(out, Diagnostic{File: r.file, Message: fmt.Sprintf("%d more problems not shown; the first %d follow", len(rest), MaxFileDiagnostics), Severity: sev, Service: r.service})
	return out
}

// table is one TOML table being checked. Every getter records the key as
// known, so done can name the keys nobody asked for.
type table struct {
	r     *report
	path  string
	m     map[string]any
	known map[string]bool
}

func newTable(r *report, path string, m map[string]any) *table {
	return &table{r: r, path: path, m: m, known: map[string]bool{}}
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends a key to a key path, quoting it when TOML would.
func joinPath(parent, key string) string {
	if !bareKey.MatchString(key) {
		// ASCII-only: a key spelt with a look-alike or invisible
		// character must show it as an escape, not pass for the real key.
		key = strconv.QuoteToASCII(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func (t *table) at(key string) string { return joinPath(t.path, key) }

// get returns the raw value of key.
func (t *table) get(key string) (any, bool) {
	t.known[key] = true
	v, ok := t.m[key]
	return v, ok
}

// typeName names a decoded TOML value the way the TOML spec does.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func (t *table) str(key string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.r.errorf(t.at(key), "must be a string, not %s", typeName(v))
		return "", false
	}
	return s, true
}

func (t *table) boolean(key string) (bool, bool) {
	v, ok := t.get(key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		t.r.errorf(t.at(key), "must be true or false, not %s", typeName(v))
		return false, false
	}
	return b, true
}

// port reads an integer key that must be a TCP/UDP port.
func (t *table) port(key string) (int, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	return checkPort(t.r, t.at(key), v)
}

func checkPort(r *report, path string, v any) (int, bool) {
	n, ok := v.(int64)
	if !ok {
		r.errorf(path, "must be an integer port in 1-65535, not %s", typeName(v))
		return 0, false
	}
	if n < 1 || n > math.MaxUint16 {
		r.errorf(path, "%d is outside 1-65535", n)
		return 0, false
	}
	return int(n), true
}

// array returns the elements of an array key.
func (t *table) array(key string) ([]any, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	switch a := v.(type) {
	case []any:
		return a, true
	case []map[string]any:
		out := make([]any, len(a))
		for i := range a {
			out[i] = a[i]
		}
		return out, true
	}
	t.r.errorf(t.at(key), "must be an array, not %s", typeName(v))
	return nil, false
}

// strings reads an array of strings; elements of another type are
// reported one by one and left out.
func (t *table) strings(key string) ([]string, bool) {
	a, ok := t.array(key)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for i, v := range a {
		s, ok := v.(string)
		if !ok {
			t.r.errorf(indexPath(t.at(key), i), "must be a string, not %s", typeName(v))
			continue
		}
		out = append(out, s)
	}
	return out, true
}

// tables reads an array of tables ([[key]] or key = [{...}]).
func (t *table) tables(key string) ([]*table, bool) {
	a, ok := t.array(key)
	if !ok {
		return nil, false
	}
	out := make([]*table, 0, len(a))
	for i, v := range a {
		m, ok := v.(map[string]any)
		p := indexPath(t.at(key), i)
		if !ok {
			t.r.errorf(p, "must be a table, not %s", typeName(v))
			out = append(out, newTable(t.r, p, map[string]any{}))
			continue
		}
		out = append(out, newTable(t.r, p, m))
	}
	return out, true
}

// sub reads a table key.
func (t *table) sub(key string) (*table, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.r.errorf(t.at(key), "must be a table, not %s", typeName(v))
		return nil, false
	}
	return newTable(t.r, t.at(key), m), true
}

// done reports every key of the table that no getter asked for.
func (t *table) done() {
	var unknown []string
	for k := range t.m {
		if !t.known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(t.known))
	for k := range t.known {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, k := range unknown {
		msg := "unknown key"
		if s := suggest(k, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		t.r.errorf(t.at(k), "%s; allowed here: %s", msg, strings.Join(known, ", "))
	}
}

// suggest returns the known key closest to k when it is a likely typo.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	for _, c := range known {
		d := editDistance(lk, c, bestD)
		if d < bestD {
			best, bestD = c, d
		}
	}
	// A one-letter key is close to every short key; only suggest when
	// the typo is small next to the word.
	if best != "" && bestD*3 > len(best)+1 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance, giving up at limit.
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
