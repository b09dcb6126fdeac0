package words

import (
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/internal/links"
)

func TestFrenchTypography(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Enquête : %s":           "Enquête\u00a0: %s",
		"Vraiment ? Oui ! Bon ;": "Vraiment\u202f? Oui\u202f! Bon\u202f;",
		"« Pulse »":              "«\u00a0Pulse\u00a0»",
		"%d %% terminées":        "%d\u202f%% terminées",
		"à %s et %d":             "à %s et %d", // verbs are not percent signs
		"https://x/?a=1":         "https://x/?a=1",
	} {
		if got := French(in); got != want {
			t.Errorf("French(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestComposeWritesOneSentenceForEveryChannel(t *testing.T) {
	t.Parallel()
	paris, _ := time.LoadLocation("Europe/Paris")
	exp, sent := "2026-03-03T08:00:00Z", "2026-02-27T12:00:00Z"
	n := Notification{Kind: microapps.NoticeSurveyStatistics, IntegrationID: "i-1", SurveyID: "SV_1", DistributionID: "EMD 2",
		Data: Data{SurveyName: "Pulse", FunctionalGroup: "Sales", ExpiresAt: &exp, SentAt: &sent, Sent: 8, Finished: 2,
			ReviewLink: "https://stale.example/ignored"}}
	in := links.Integration{BaseURL: "https://iad1.qualtrics.com/API/v3/", BrandBaseURL: "acme.qualtrics.com"}
	w, err := Compose(n, "fr", in)
	if err != nil {
		t.Fatal(err)
	}
	if got := Text(w.Subject, paris, w.Lang); got != "Statistiques de l’enquête\u00a0: Pulse (envoyée le 27 févr. 2026)" {
		t.Errorf("subject %q", got)
	}
	if got := Text(w.Body, paris, w.Lang); got != "Pulse envoyée le 27 févr. 2026, 13:00 CET\u00a0: 2 sur 8 terminées (taux de réponse 25,0\u202f%). Le lien expire le 3 mars 2026, 09:00 CET." {
		t.Errorf("body %q", got)
	}
	// The review link comes from the one deep-link builder, not the data.
	if w.Qualtrics.URL != "https://acme.qualtrics.com/Q/MyProjectsSection" || w.Page.URL != "/admin/distributions/i-1/EMD%202" {
		t.Errorf("links %+v %+v", w.Qualtrics, w.Page)
	}
	if !w.Body[0].Name || w.Body[0].Text != "Pulse" {
		t.Error("the survey name is not marked as such")
	}
	w, _ = Compose(Notification{Kind: microapps.NoticeNewSurvey, Data: Data{SurveyName: "P", RespondLink: "javascript:alert(1)"}}, "de", in)
	if w.Lang != "en" || w.Qualtrics.URL != "" || !strings.HasPrefix(Text(w.Body, time.UTC, w.Lang), "You have received") {
		t.Errorf("fallback %+v", w)
	}
	if _, err := Compose(Notification{Kind: "other"}, "en", in); err == nil {
		t.Error("an unknown kind was put into words")
	}
}
