package console

import (
	"strings"
	"testing"

	"github.com/microapps/microapps/web"
)

// The console's counted messages take the form each count calls for, in
// both languages.
func TestConsolePluralForms(t *testing.T) {
	t.Parallel()
	one := func(n int) []any { return []any{n} }
	const nnbsp, nbsp = "\u202f", "\u00a0"
	cases := []struct {
		key    string
		args   func(n int) []any
		en, fr [3]string // for n = 0, 1, 2
	}{
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
		{"console.health.failing", one,
			[3]string{"0 integrations on this page need someone.", "1 integration on this page needs someone.",
				"2 integrations on this page need someone."},
			[3]string{"0 intégration de cette page demande quelqu’un.", "1 intégration de cette page demande quelqu’un.",
				"2 intégrations de cette page demandent quelqu’un."}},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		tested[c.key] = true
		for _, lw := range []struct {
			l    web.Lang
			want [3]string
		}{{web.LangEN, c.en}, {web.LangFR, c.fr}} {
			for n, want := range lw.want {
				if got := lw.l.T(c.key, c.args(n)...); got != want {
					t.Errorf("%s T(%q, %v) =\n\t%q, want\n\t%q", lw.l, c.key, c.args(n), got, want)
				}
			}
		}
	}
	for l, m := range consolePlurals {
		for key := range m {
			if !tested[key] {
				t.Errorf("%s plural message %q has no case here", l, key)
			}
		}
	}
}

func TestPluralFormsFollowEachCount(t *testing.T) {
	t.Parallel()
	got := web.LangEN.T("console.run.vetoed", 1, 0, 2)
	if want := "would have removed 1 survey, 0 distributions and 2 recipients,"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to say %q", got, want)
	}
	got = web.LangFR.T("console.run.vetoed", 2, 1, 0)
	if want := "aurait supprimé 2 questionnaires, 1 distribution et 0 destinataire,"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to say %q", got, want)
	}
}
