package spec

// MaxNesting is how deeply keys, arrays and inline tables may nest in a
// file. The TOML decoder takes time quadratic in the depth of nested
// inline tables and of dotted keys (a.a.a... = 1: 16,000 levels in 32 KB
// took 11 s, a 256 KiB file would take minutes), so a small file could
// otherwise stall the agent; real definitions never go past 3.
const MaxNesting = 16

// NestingDepth is nestingDepth for other TOML readers of mcp (the agent's
// configuration), so every file mcp parses has the same bound.
func NestingDepth(b []byte) int { return nestingDepth(b) }

// nestingDepth returns the deepest nesting of '[' and '{' outside strings
// and comments, plus the dots of the dotted key or table name at that
// point (dots since the last newline, '=', ',' or '{', which is where a
// key starts; a float or a time after '=' adds at most one). It only has
// to bound valid TOML: on invalid input the decoder reports the real
// error.
func nestingDepth(b []byte) int {
	depth, dots, deepest := 0, 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '#':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			dots = 0
		case '"', '\'':
			i = skipString(b, i)
		case '\n', '=', ',':
			dots = 0
		case '.':
			dots++
			deepest = max(deepest, depth+dots)
		case '[', '{':
			depth++
			if c == '{' {
				dots = 0
			}
			deepest = max(deepest, depth+dots)
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return deepest
}

// skipString returns the index of the last byte of the string starting at
// b[i] (a quote).
func skipString(b []byte, i int) int {
	q := b[i]
	if i+2 < len(b) && b[i+1] == q && b[i+2] == q {
		// Multi-line string: ends at the next unescaped triple quote, which
		// may be followed by up to two more quotes that belong to it.
		for j := i + 3; j < len(b); j++ {
			if q == '"' && b[j] == '\\' {
				j++
				continue
			}
			if j+2 < len(b) && b[j] == q && b[j+1] == q && b[j+2] == q {
				j += 2
				for k := 0; k < 2 && j+1 < len(b) && b[j+1] == q; k++ {
					j++
				}
				return j
			}
		}
		return len(b)
	}
	for j := i + 1; j < len(b); j++ {
		switch {
		case q == '"' && b[j] == '\\':
			j++
		case b[j] == q, b[j] == '\n':
			return j
		}
	}
	return len(b)
}
