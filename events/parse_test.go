package events

import (
	"strings"
	"testing"
	"time"
)

func TestParseEventIsLenient(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
	const id = "6f1c5b1e-8d3a-4c1e-9f3e-2b7a1d0c9e8f"
	for _, tc := range []struct {
		name, topic, msg string
		wantIgnore       string // "" = stored
		wantResponse     string
		wantAt           *time.Time
	}{
		{"a message as Qualtrics documents it is stored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z","BrandID":"b","Status":"Complete"}`,
			"", "R_1", &at},
		{"lower-case keys, a space-separated date and status Full are accepted", "surveyengine.completedResponse.SV_1",
			`{"surveyid":"SV_1","responseid":"R_1","recipientid":"CID_1","distributionid":"EMD_1","completeddate":"2026-11-28 10:30:00","status":"Full"}`,
			"", "R_1", &at},
		{"numbers and nulls are read as text", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","ResponseID":12345,"RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z","BrandID":{"x":1},"Status":null}`,
			"", "12345", &at},
		{"a survey id missing from MSG is taken from the topic", "surveyengine.completedResponse.SV_1",
			`{"ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z"}`, "", "R_1", &at},
		{"a session start without a response id gets a stand-in key", "surveyengine.startedRecipientSession.SV_1",
			`{"SurveyID":"SV_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`, "", "none:EMD_1/CID_1", &at},
		// Issue 18: Topic is not signed, so MSG must be of the topic's kind, and dated.
		{"a response's MSG under a control-panel topic is ignored", "controlpanel.deactivateSurvey",
			`{"SurveyID":"SV_1","ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`,
			"a control-panel topic with a response's MSG", "", nil},
		{"a session start's MSG under a completion topic is ignored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`,
			"a response topic without a response id", "", nil},
		{"a control-panel MSG under a response topic is ignored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`, "a response topic without a response id", "", nil},
		{"a MSG without CompletedDate is ignored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","CompletedDate":null}`, "no CompletedDate", "", nil},
		{"a survey activation gets a stand-in key from survey and date", "controlpanel.activateSurvey",
			`{"SurveyID":"SV_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`, "", "none:SV_1@2026-11-28T10:30:00Z", &at},
		{"a survey activation without a date is ignored: it could not be told from its replay", "controlpanel.activateSurvey",
			`{"SurveyID":"SV_1","Status":"Complete"}`, "no CompletedDate", "", nil},
		{"another brand is ignored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","BrandID":"other"}`, "another brand", "", nil},
		{"a recipient event without a recipient is ignored", "surveyengine.completedResponse.SV_1",
			`{"SurveyID":"SV_1","ResponseID":"R_1"}`, "no recipient or distribution", "", nil},
		{"a MSG that is not JSON is ignored", "surveyengine.completedResponse.SV_1", `SurveyID=SV_1`, "MSG is not a JSON object", "", nil},
		{"a wildcard topic is not one of ours", "surveyengine.completedResponse.*.x", `{}`, "unknown topic", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, ignore := parseEvent(id, tc.topic, tc.msg, "b", now)
			if ignore != tc.wantIgnore {
				t.Fatalf("ignore = %q, want %q", ignore, tc.wantIgnore)
			}
			if ignore != "" {
				return
			}
			if ev.ResponseID != tc.wantResponse || ev.SurveyID != "SV_1" || ev.IntegrationID != id || !ev.ReceivedAt.Equal(now) {
				t.Errorf("event = %+v", ev)
			}
			if (ev.OccurredAt == nil) != (tc.wantAt == nil) || (ev.OccurredAt != nil && !ev.OccurredAt.Equal(*tc.wantAt)) {
				t.Errorf("occurred at %v, want %v", ev.OccurredAt, tc.wantAt)
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add("surveyengine.completedResponse.SV_1", `{"SurveyID":"SV_1","ResponseID":"R_1","RecipientID":"CID_1","DistributionID":"EMD_1","Status":"Complete"}`)
	f.Add("controlpanel.deactivateSurvey", `{"SurveyID":"SV_1","CompletedDate":"2026-11-28 10:30:00"}`)
	f.Add("", `[]`)
	f.Fuzz(func(t *testing.T, topic, msg string) {
		ev, ignore := parseEvent("6f1c5b1e-8d3a-4c1e-9f3e-2b7a1d0c9e8f", topic, msg, "", time.Now())
		if ignore != "" {
			return
		}
		// Anything stored names a survey, a known topic and a dedupe key.
		if ev.SurveyID == "" || ev.ResponseID == "" {
			t.Fatalf("stored an event without survey or key: %+v", ev)
		}
		if k, _ := parseTopic(ev.Topic); k == "" || strings.TrimSpace(ev.Topic) != ev.Topic {
			t.Fatalf("stored an unknown topic %q", ev.Topic)
		}
	})
}

// Issue 31 (info): a NUL in a callback's MSG or topic is removed when it is
// read, as in every string the qualtrics package decodes: PostgreSQL would
// refuse the event (and Qualtrics retry it for ever).
func TestParseEventStripsNULs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ev, ignore := parseEvent("6f1c5b1e-8d3a-4c1e-9f3e-2b7a1d0c9e8f", "surveyengine.completedResponse.SV_1\x00",
		`{"SurveyID":"SV_1\u0000","ResponseID":"R_\u00001","RecipientID":"CID_1","DistributionID":"EMD\u0000_1","CompletedDate":"2026-11-28T10:30:00Z","Status":"Complete"}`,
		"", now)
	if ignore != "" {
		t.Fatalf("ignored: %s", ignore)
	}
	for _, v := range []string{ev.Topic, ev.SurveyID, ev.ResponseID, ev.DistributionID} {
		if strings.ContainsRune(v, 0) {
			t.Errorf("a NUL is left in %+v", ev)
		}
	}
	if ev.SurveyID != "SV_1" || ev.ResponseID != "R_1" || ev.DistributionID != "EMD_1" || ev.Topic != "surveyengine.completedResponse.SV_1" {
		t.Errorf("event %+v", ev)
	}
}
