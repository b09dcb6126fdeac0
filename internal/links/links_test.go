package links

import (
	"net/url"
	"testing"
)

func TestLinks(t *testing.T) {
	t.Parallel()
	in := Integration{BaseURL: "https://iad1.qualtrics.com/API/v3/"}
	if got := ReviewDistributionsURL(in, "SV_1", "EMD_1"); got != "https://iad1.qualtrics.com/Q/MyProjectsSection" {
		t.Errorf("default review link %q", got)
	}
	in.BrandBaseURL = "acme.qualtrics.com"
	in.DeepLinks = map[string]string{ReviewDistributions: "{scheme}://{host}/d/{surveyId}/{distributionId}"}
	if got := ReviewDistributionsURL(in, "SV 1", "EMD/1"); got != "https://acme.qualtrics.com/d/SV%201/EMD%2F1" {
		t.Errorf("templated review link %q", got)
	}
	in.DeepLinks[ReviewDistributions] = "javascript:alert('{host}')"
	if got := ReviewDistributionsURL(in, "SV_1", "EMD_1"); got != "" {
		t.Errorf("a javascript: template gave %q", got)
	}
	pub, _ := url.Parse("https://surveys.example.com/app/")
	if got := Absolute(pub, DistributionData("i 1", "EMD_1")); got != "https://surveys.example.com/app/admin/distributions/i%201/EMD_1" {
		t.Errorf("absolute %q", got)
	}
	if got := Absolute(pub, Unsubscribe("tok")); got != "https://surveys.example.com/app/unsubscribe/tok" {
		t.Errorf("unsubscribe %q", got)
	}
}
