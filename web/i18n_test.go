package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPickLang(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		cookie string // "" sends none
		header string // Accept-Language; "" sends none
		want   Lang
	}{
		{"no header and no cookie gives English", "", "", langEN},
		{"plain French gives French", "", "fr", langFR},
		{"Swiss French gives French", "", "fr-CH", langFR},
		{"Canadian French before English gives French", "", "fr-CA,en;q=0.8", langFR},
		{"British English before French gives English", "", "en-GB,fr;q=0.9", langEN},
		{"the higher quality wins whatever the order", "", "en;q=0.1, fr;q=0.9", langFR},
		{"an unsupported first choice falls to the next supported one", "", "de, fr;q=0.5", langFR},
		{"only unsupported languages give English", "", "de, es;q=0.5", langEN},
		{"a star alone gives English", "", "*", langEN},
		{"a star before French gives French", "", "*, fr;q=0.5", langFR},
		{"q=0 refuses a language", "", "fr;q=0", langEN},
		{"q=0 on French leaves English", "", "fr;q=0, en;q=0.1", langEN},
		{"a malformed quality gives English", "", "fr;q=abc", langEN},
		{"a malformed tag gives English", "", "français", langEN},
		{"separators alone give English", "", ";;;", langEN},
		{"case does not matter", "", "FR-be", langFR},
		{"a long browser list is followed in order", "", "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7,fr;q=0.6", langEN},
		{"the cookie wins over the header", "fr", "en-US,en;q=0.9", langFR},
		{"the English cookie wins over a French header", "en", "fr-FR", langEN},
		{"an unknown cookie leaves the header to decide", "de", "fr-CH", langFR},
		{"an unknown cookie and no header give English", "xx", "", langEN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.header != "" {
				r.Header.Set("Accept-Language", c.header)
			}
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: langCookie, Value: c.cookie})
			}
			if got := pickLang(r, langCookie); got != c.want {
				t.Errorf("pickLang(cookie %q, Accept-Language %q) = %q, want %q", c.cookie, c.header, got, c.want)
			}
		})
	}
}
