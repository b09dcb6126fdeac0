package web

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
		{"no header and no cookie gives English", "", "", LangEN},
		{"plain French gives French", "", "fr", LangFR},
		{"Swiss French gives French", "", "fr-CH", LangFR},
		{"Canadian French before English gives French", "", "fr-CA,en;q=0.8", LangFR},
		{"British English before French gives English", "", "en-GB,fr;q=0.9", LangEN},
		{"the higher quality wins whatever the order", "", "en;q=0.1, fr;q=0.9", LangFR},
		{"an unsupported first choice falls to the next supported one", "", "de, fr;q=0.5", LangFR},
		{"only unsupported languages give English", "", "de, es;q=0.5", LangEN},
		{"a star alone gives English", "", "*", LangEN},
		{"a star before French gives French", "", "*, fr;q=0.5", LangFR},
		{"q=0 refuses a language", "", "fr;q=0", LangEN},
		{"q=0 on French leaves English", "", "fr;q=0, en;q=0.1", LangEN},
		{"a malformed quality gives English", "", "fr;q=abc", LangEN},
		{"a malformed tag gives English", "", "français", LangEN},
		{"separators alone give English", "", ";;;", LangEN},
		{"case does not matter", "", "FR-be", LangFR},
		{"a long browser list is followed in order", "", "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7,fr;q=0.6", LangEN},
		{"the cookie wins over the header", "fr", "en-US,en;q=0.9", LangFR},
		{"the English cookie wins over a French header", "en", "fr-FR", LangEN},
		{"an unknown cookie leaves the header to decide", "de", "fr-CH", LangFR},
		{"an unknown cookie and no header give English", "xx", "", LangEN},
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

func TestEveryKeyIsInEveryLanguage(t *testing.T) {
	t.Parallel()
	kind := func(l Lang, key string) string {
		if _, ok := messages[l][key]; ok {
			return "plain"
		}
		if _, ok := pluralMessages[l][key]; ok {
			return "plural"
		}
		return "missing"
	}
	for _, from := range supportedLangs {
		keys := slices.Collect(maps.Keys(messages[from]))
		keys = slices.AppendSeq(keys, maps.Keys(pluralMessages[from]))
		for _, key := range keys {
			want := kind(from, key)
			for _, to := range supportedLangs {
				if got := kind(to, key); got != want {
					t.Errorf("%q is %s in %s but %s in %s", key, want, from, got, to)
				}
			}
		}
	}
}

// Page numbers and a percentage are numbers, not counts of things: their
// words do not change with them.
var notCounts = map[string]bool{"pager.of": true, "admin.rate": true}

func TestCountsHavePluralForms(t *testing.T) {
	t.Parallel()
	for _, l := range supportedLangs {
		for key, m := range messages[l] {
			if strings.Contains(m, "%d") && !notCounts[key] {
				t.Errorf("%s %q takes a count but has no plural forms: %q", l, key, m)
			}
		}
	}
}

func TestPluralForms(t *testing.T) {
	t.Parallel()
	one := func(n int) []any { return []any{n} }
	const nnbsp, nbsp = "\u202f", "\u00a0"
	cases := []struct {
		key    string
		args   func(n int) []any
		en, fr [3]string // for n = 0, 1, 2
	}{
		{"nav.unread", one,
			[3]string{"0 unread", "1 unread", "2 unread"},
			[3]string{"0 non lue", "1 non lue", "2 non lues"}},
		{"results.completion", func(n int) []any { return []any{n, 10, n * 10} },
			[3]string{"0 of 10 finished (0%)", "1 of 10 finished (10%)", "2 of 10 finished (20%)"},
			[3]string{"0 sur 10 terminé (0" + nnbsp + "%)", "1 sur 10 terminé (10" + nnbsp + "%)", "2 sur 10 terminés (20" + nnbsp + "%)"}},
		{"rel.in.min", one,
			[3]string{"in 0 minutes", "in 1 minute", "in 2 minutes"},
			[3]string{"dans 0 minute", "dans 1 minute", "dans 2 minutes"}},
		{"rel.in.hour", one,
			[3]string{"in 0 hours", "in 1 hour", "in 2 hours"},
			[3]string{"dans 0 heure", "dans 1 heure", "dans 2 heures"}},
		{"rel.in.day", one,
			[3]string{"in 0 days", "in 1 day", "in 2 days"},
			[3]string{"dans 0 jour", "dans 1 jour", "dans 2 jours"}},
		{"rel.ago.min", one,
			[3]string{"0 minutes ago", "1 minute ago", "2 minutes ago"},
			[3]string{"il y a 0 minute", "il y a 1 minute", "il y a 2 minutes"}},
		{"rel.ago.hour", one,
			[3]string{"0 hours ago", "1 hour ago", "2 hours ago"},
			[3]string{"il y a 0 heure", "il y a 1 heure", "il y a 2 heures"}},
		{"rel.ago.day", one,
			[3]string{"0 days ago", "1 day ago", "2 days ago"},
			[3]string{"il y a 0 jour", "il y a 1 jour", "il y a 2 jours"}},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		tested[c.key] = true
		for _, lw := range []struct {
			l    Lang
			want [3]string
		}{{LangEN, c.en}, {LangFR, c.fr}} {
			for n, want := range lw.want {
				if got := lw.l.T(c.key, c.args(n)...); got != want {
					t.Errorf("%s T(%q, %v) =\n\t%q, want\n\t%q", lw.l, c.key, c.args(n), got, want)
				}
			}
		}
	}
	for _, l := range supportedLangs {
		for key := range pluralMessages[l] {
			if !tested[key] {
				t.Errorf("plural message %q has no case here", key)
			}
		}
	}
}

func TestPluralCountsAreGroupedTheLanguagesWay(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		l    Lang
		want string
	}{{LangEN, "1,234 unread"}, {LangFR, "1\u00a0234 non lues"}} {
		if got := c.l.T("nav.unread", 1234); got != c.want {
			t.Errorf("%s: %q, want %q", c.l, got, c.want)
		}
	}
}

func TestPluralMessageFallsBackToEnglish(t *testing.T) {
	t.Parallel()
	// A language without a catalog reads English, plural forms included.
	if got := Lang("de").T("nav.unread", 1); got != "1 unread" {
		t.Errorf("got %q", got)
	}
}
