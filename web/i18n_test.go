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
		{"console.warnings.n", one,
			[3]string{"0 warnings", "1 warning", "2 warnings"},
			[3]string{"0 avertissement", "1 avertissement", "2 avertissements"}},
		{"console.logs.lead", one,
			[3]string{
				"0 calls to Qualtrics in the last 24 hours (at most 500, newest first).",
				"1 call to Qualtrics in the last 24 hours (at most 500, newest first).",
				"2 calls to Qualtrics in the last 24 hours (at most 500, newest first)."},
			[3]string{
				"0 appel à Qualtrics ces dernières 24 heures (500 au plus, les plus récents d’abord).",
				"1 appel à Qualtrics ces dernières 24 heures (500 au plus, les plus récents d’abord).",
				"2 appels à Qualtrics ces dernières 24 heures (500 au plus, les plus récents d’abord)."}},
		{"console.runs.units", func(n int) []any { return []any{0, n} },
			[3]string{"0 of 0 surveys and distributions", "0 of 1 survey or distribution", "0 of 2 surveys and distributions"},
			[3]string{"0 sur 0 enquête ou distribution", "0 sur 1 enquête ou distribution", "0 sur 2 enquêtes et distributions"}},
		{"console.runs.failedunits", one,
			[3]string{"0 failed, retried", "1 failed, retried", "2 failed, retried"},
			[3]string{"0 en échec, relancée", "1 en échec, relancée", "2 en échec, relancées"}},
		{"console.run.vetoed", func(n int) []any { return []any{n, n, n} },
			[3]string{
				"Nothing was removed: this sync would have removed 0 surveys, 0 distributions and 0 recipients, more than the veto allows. If the service account lost access to projects in Qualtrics, restore it; if they are really gone, let the removal through.",
				"Nothing was removed: this sync would have removed 1 survey, 1 distribution and 1 recipient, more than the veto allows. If the service account lost access to projects in Qualtrics, restore it; if they are really gone, let the removal through.",
				"Nothing was removed: this sync would have removed 2 surveys, 2 distributions and 2 recipients, more than the veto allows. If the service account lost access to projects in Qualtrics, restore it; if they are really gone, let the removal through."},
			[3]string{
				"Rien n’a été supprimé" + nbsp + ": cette synchro aurait supprimé 0 questionnaire, 0 distribution et 0 destinataire, plus que le veto ne le permet. Si le compte de service a perdu l’accès à des projets dans Qualtrics, rétablissez-le" + nnbsp + "; s’ils ont vraiment disparu, autorisez la suppression.",
				"Rien n’a été supprimé" + nbsp + ": cette synchro aurait supprimé 1 questionnaire, 1 distribution et 1 destinataire, plus que le veto ne le permet. Si le compte de service a perdu l’accès à des projets dans Qualtrics, rétablissez-le" + nnbsp + "; s’ils ont vraiment disparu, autorisez la suppression.",
				"Rien n’a été supprimé" + nbsp + ": cette synchro aurait supprimé 2 questionnaires, 2 distributions et 2 destinataires, plus que le veto ne le permet. Si le compte de service a perdu l’accès à des projets dans Qualtrics, rétablissez-le" + nnbsp + "; s’ils ont vraiment disparu, autorisez la suppression."}},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		tested[c.key] = true
		for _, lw := range []struct {
			l    Lang
			want [3]string
		}{{langEN, c.en}, {langFR, c.fr}} {
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

func TestPluralFormsFollowEachCount(t *testing.T) {
	t.Parallel()
	got := langEN.T("console.run.vetoed", 1, 0, 2)
	if want := "would have removed 1 survey, 0 distributions and 2 recipients,"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to say %q", got, want)
	}
	got = langFR.T("console.run.vetoed", 2, 1, 0)
	if want := "aurait supprimé 2 questionnaires, 1 distribution et 0 destinataire,"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to say %q", got, want)
	}
}

func TestPluralCountsAreGroupedTheLanguagesWay(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		l    Lang
		want string
	}{{langEN, "1,234 warnings"}, {langFR, "1\u00a0234 avertissements"}} {
		if got := c.l.T("console.warnings.n", 1234); got != c.want {
			t.Errorf("%s: %q, want %q", c.l, got, c.want)
		}
	}
}

func TestPluralMessageFallsBackToEnglish(t *testing.T) {
	t.Parallel()
	// A language without a catalog reads English, plural forms included.
	if got := Lang("de").T("console.warnings.n", 1); got != "1 warning" {
		t.Errorf("got %q", got)
	}
}
