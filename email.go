package microapps

import (
	"net/mail"
	"strings"
)

// NormalizeEmail is the one normalisation of an email address, the same for
// sign-in, the admin API and the sync: surrounding white space trimmed, ASCII
// letters lower-cased, and anything non-ASCII refused (ok is false). Unicode
// case folding is not used on purpose: it maps look-alikes onto real
// addresses ("\u212Aate@example.com", with a Kelvin sign, folds to
// kate@example.com). The sync stores a recipient whose address is not ASCII
// with no email, so it matches no user.
func NormalizeEmail(raw string) (string, bool) {
	e := strings.Trim(raw, " \t\r\n\v\f")
	if e == "" {
		return "", false
	}
	b := []byte(e)
	for i, c := range b {
		switch {
		case c >= 0x80:
			return "", false
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b), true
}

// ParseAddress normalises an address an admin typed and checks it is a
// plain addr-spec (no display name) of a domain with a dot (or localhost):
// the form recipients are matched by.
func ParseAddress(raw string) (string, bool) {
	e, ok := NormalizeEmail(raw)
	if !ok || len(e) > 320 {
		return "", false
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" ||
		!strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") && !strings.HasSuffix(e, "@localhost") {
		return "", false
	}
	return e, true
}
