package qualtrics

// validJSON reports whether b is exactly one JSON value (with surrounding
// white space), with the same verdict as encoding/json's Valid, nesting limit
// included. It is one loop over the bytes instead of encoding/json's per-byte
// state machine: a sync checks every history and links page it reads, and
// the check was a sixth of the sync's CPU.
func validJSON(b []byte) bool {
	var buf [64]byte // the containers open at i; deeper bodies spill to the heap
	stack := buf[:0]
	i := skipSpace(b, 0)
value:
	if i >= len(b) {
		return false
	}
	switch b[i] {
	case '{', '[':
		if len(stack) >= maxNestingDepth {
			return false
		}
		open := b[i]
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == open+2 { // '}' and ']' are two past '{' and '['
			i++
			break
		}
		stack = append(stack, open)
		if open == '{' {
			if i = validMemberKey(b, i); i < 0 {
				return false
			}
		}
		goto value
	case '"':
		i = validString(b, i)
	case 't':
		i = validLiteral(b, i, "true")
	case 'f':
		i = validLiteral(b, i, "false")
	case 'n':
		i = validLiteral(b, i, "null")
	default:
		i = validNumber(b, i)
	}
	if i < 0 {
		return false
	}
	// After a value: a separator, the end of its container, or the end.
	for {
		i = skipSpace(b, i)
		if len(stack) == 0 {
			return i == len(b)
		}
		if i >= len(b) {
			return false
		}
		top := stack[len(stack)-1]
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
			if top == '{' {
				if i = validMemberKey(b, i); i < 0 {
					return false
				}
			}
			goto value
		case top + 2:
			stack = stack[:len(stack)-1]
			i++
		default:
			return false
		}
	}
}

// maxNestingDepth is encoding/json's limit on nested objects and arrays.
const maxNestingDepth = 10000

// validMemberKey checks `"key" :` at b[i] and returns the index of the value
// after it (white space skipped), or -1.
func validMemberKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// validString checks the string starting at b[i] (a quote) and returns the
// index after its closing quote, or -1. Like encoding/json it refuses
// control characters and unknown escapes and lets any other byte through.
func validString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func validLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i]
// and returns the index after it, or -1.
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return -1
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		i = digits(b, i)
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}
