package qualtrics

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRecordedFixturesDecode(t *testing.T) {
	t.Parallel()
	fx := sharedFixtures(t)
	read := func(name string) []byte { return readShared(t, fx, name) }

	t.Run("the survey list decodes with its dates", func(t *testing.T) {
		t.Parallel()
		p, err := decodePage[Survey](read("surveys-list.json"))
		if err != nil || len(p.Elements) != 4 || p.NextPage != "" {
			t.Fatalf("page %+v, err %v", p, err)
		}
		s := p.Elements[0]
		if s.ID != "SV_3gbwq8aJgqPwQDP" || s.Name != "Beskar Armor" || !s.IsActive || !s.CreationDate.Equal(mustTime(t, "2020-02-20T00:35:40Z")) {
			t.Fatalf("survey = %+v", s)
		}
	})
	t.Run("a survey decodes without its question set", func(t *testing.T) {
		t.Parallel()
		s, meta, err := decodeEnvelope[SurveyDetail](read("survey-get.json"))
		if err != nil || meta.RequestID != "e6d669b6-7bd7-4670-98da-77ff64d60145" {
			t.Fatal(err, meta)
		}
		want := SurveyDetail{ID: "SV_3gbwq8aJgqPwQDP", Name: "Beskar Armor", OwnerID: "UR_8wfG5qsMxuh0Jrn", OrganizationID: "conjoint",
			IsActive: true, CreationDate: mustTime(t, "2020-02-20T00:35:40Z"), LastModifiedDate: mustTime(t, "2024-06-10T23:20:09Z"),
			ResponseCounts: ResponseCounts{Auditable: 27, Generated: 17}}
		if s != want {
			t.Fatalf("survey = %+v\nwant     %+v", s, want)
		}
	})
	t.Run("a survey definition yields its metadata and brand base URL", func(t *testing.T) {
		t.Parallel()
		m, _, err := decodeEnvelope[SurveyMeta](read("survey-definition.json"))
		if err != nil || m.BrandBaseURL != "https://conjoint.qualtrics.com" || m.SurveyID != "SV_3gbwq8aJgqPwQDP" ||
			m.QuestionCount != 1000 || m.SurveyStatus != "Active" || !m.LastAccessed.IsZero() || m.LastActivated.IsZero() {
			t.Fatalf("meta = %+v, err %v", m, err)
		}
	})
	t.Run("an empty distribution list is an empty page", func(t *testing.T) {
		t.Parallel()
		p, err := decodePage[Distribution](read("distributions-empty.json"))
		if err != nil || p.Elements == nil || len(p.Elements) != 0 || p.NextPage != "" {
			t.Fatalf("page %+v, err %v", p, err)
		}
	})
	t.Run("history and links of one distribution join on contactId", func(t *testing.T) {
		t.Parallel()
		h, err := decodePage[HistoryEntry](read("distribution-history.json"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := decodePage[Link](read("distribution-links.json"))
		if err != nil {
			t.Fatal(err)
		}
		he, le := h.Elements[0], l.Elements[0]
		if he.ContactID != le.ContactID || he.ContactID != "CID_6RkMIPKLVnNn197" {
			t.Fatalf("contact ids %q and %q", he.ContactID, le.ContactID)
		}
		if he.Status != StatusSurveyStarted || le.Status != "Email not sent" || le.Email != "s.warnhoff@techsmith.com" || le.Unsubscribed {
			t.Fatalf("history %+v links %+v", he, le)
		}
		if !he.SentAt.Equal(mustTime(t, "2021-06-01T18:59:23.161Z")) || he.SentAt.Nanosecond() != 161e6 || !he.ResponseCompletedAt.IsZero() || he.ResponseID != "" {
			t.Fatalf("history times %+v", he)
		}
		if !le.LinkExpiration.Equal(mustTime(t, "2021-07-31T14:58:00Z")) {
			t.Fatalf("link expiration %v", le.LinkExpiration)
		}
	})
	t.Run("the 2019 links carry unsubscribed as the string 0", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"distribution-links-proxied-page-1.json", "distribution-links-proxied-page-2.json", "distribution-links-proxied-page-3.json"} {
			p, err := decodePage[Link](read(name))
			if err != nil || len(p.Elements) != 100 || !strings.HasPrefix(p.NextPage, "https://az1.qualtrics.com/API/v3/") {
				t.Fatalf("%s: %d elements, next %q, err %v", name, len(p.Elements), p.NextPage, err)
			}
			for _, l := range p.Elements {
				if l.Unsubscribed || !strings.HasPrefix(l.ContactID, "MLRP_") || l.Email == "" {
					t.Fatalf("%s: link %+v", name, l)
				}
			}
		}
	})
	t.Run("the proxied notice names az1", func(t *testing.T) {
		t.Parallel()
		_, meta, err := decodeEnvelope[struct{}](read("distribution-links-proxied-page-1.json"))
		if err != nil || suggestedHost(meta.Notice) != "az1.qualtrics.com" {
			t.Fatalf("notice %q, err %v", meta.Notice, err)
		}
		_, meta, _ = decodeEnvelope[struct{}](read("distribution-links-proxied-page-3.json"))
		if suggestedHost(meta.Notice) != "" {
			t.Fatalf("page 3 has no notice, got %q", meta.Notice)
		}
	})
	errs := []struct {
		name, file, code, msg, requestID, notice string
	}{
		{"a 404 with a proxy notice keeps code, request id and notice", "error-404-with-proxy-notice.json", "GED_3", "Distribution not found.", "08d8caf1-ad8c-4170-a5f6-0f393ce4bc8a", "az1.qualtrics.com"},
		{"a 404 with a null request id decodes", "eventsubscription-not-found.json", "ESSG_2", "pewpewpewpew not found", "", ""},
		{"a 2015 error shape decodes", "error-404-surveys.json", "GS_5", "You do not have permission to access this resource.", "3d6a9018-3b87-4265-b662-572ad96bbe6c", ""},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, meta, err := decodeEnvelope[struct{}](read(tt.file))
			code, msg, reqID := meta.errorFields()
			if err != nil || code != tt.code || msg != tt.msg || reqID != tt.requestID || suggestedHost(meta.Notice) != tt.notice {
				t.Fatalf("code %q msg %q request %q notice %q err %v", code, msg, reqID, meta.Notice, err)
			}
		})
	}
	t.Run("event subscriptions decode", func(t *testing.T) {
		t.Parallel()
		created, _, err := decodeEnvelope[struct {
			ID string `json:"id"`
		}](read("eventsubscription-create.json"))
		if err != nil || created.ID != "SUB_5pPHcNfCaiADoFf" {
			t.Fatal(created, err)
		}
		s, _, err := decodeEnvelope[EventSubscription](read("eventsubscription-get.json"))
		want := EventSubscription{ID: "SUB_5pPHcNfCaiADoFf", Scope: "cambridgetripod", Topics: "controlpanel.activateSurvey", PublicationURL: "https://some.random.url"}
		if err != nil || s != want {
			t.Fatalf("subscription %+v, err %v", s, err)
		}
	})
}

func TestLenientDecoding(t *testing.T) {
	t.Parallel()
	t.Run("history keeps unknown statuses and tolerates nulls and odd times", func(t *testing.T) {
		t.Parallel()
		p, err := decodePage[HistoryEntry](readTestdata(t, "history-lenient.json"))
		if err != nil || len(p.Elements) != 3 || p.Meta.RequestID != "" {
			t.Fatalf("page %+v, err %v", p, err)
		}
		a, b, c := p.Elements[0], p.Elements[1], p.Elements[2]
		if a.Status != StatusSurveyFinished || a.ResponseID != "R_1234567890abcde" || a.SentAt.Nanosecond() != 123e6 ||
			!a.OpenedAt.IsZero() || !a.ResponseStartedAt.IsZero() || a.ResponseCompletedAt.IsZero() {
			t.Fatalf("first = %+v", a)
		}
		if b.Status != "SomeFutureStatus" || !b.SentAt.IsZero() {
			t.Fatalf("second = %+v", b)
		}
		if c != (HistoryEntry{}) {
			t.Fatalf("a null element should be zero, got %+v", c)
		}
	})
	t.Run("links read unsubscribed in every recorded spelling", func(t *testing.T) {
		t.Parallel()
		p, err := decodePage[Link](readTestdata(t, "links-lenient.json"))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, l := range p.Elements {
			got += fmt.Sprintf("%s=%v ", l.ContactID, l.Unsubscribed)
		}
		if got != "CID_1=false CID_2=true CID_3=false CID_4=true CID_5=true CID_6=false CID_7=false " {
			t.Fatalf("unsubscribed: %s", got)
		}
		l1, l2, l4 := p.Elements[0], p.Elements[1], p.Elements[3]
		if l1.ExceededContactFrequency || !l2.ExceededContactFrequency || l1.ExternalDataReference != "29" || l4.LinkExpiration.Nanosecond() != 5e8 {
			t.Fatalf("links %+v %+v %+v", l1, l2, l4)
		}
		if suggestedHost(p.Meta.Notice) != "sjc1.qualtrics.com" || !strings.Contains(p.NextPage, "skipToken=CID_7") {
			t.Fatalf("meta %+v next %q", p.Meta, p.NextPage)
		}
	})
	t.Run("distributions decode every documented field", func(t *testing.T) {
		t.Parallel()
		p, err := decodePage[Distribution](readTestdata(t, "distributions.json"))
		if err != nil || len(p.Elements) != 3 {
			t.Fatalf("page %+v, err %v", p, err)
		}
		d := p.Elements[0]
		want := Distribution{
			ID: "EMD_Invite0000001", OwnerID: "UR_owner", OrganizationID: "org", RequestStatus: "Generated", RequestType: RequestInvite,
			SendDate: mustTime(t, "2024-03-01T08:00:00Z"), CreatedDate: mustTime(t, "2024-02-28T17:01:02.345Z"), ModifiedDate: mustTime(t, "2024-03-01T08:00:01Z"),
			Headers:    MailHeaders{FromEmail: "noreply@qemailserver.com", ReplyToEmail: "survey@example.com", FromName: "Survey Team", Subject: "Tell us"},
			Recipients: Recipients{MailingListID: "CG_list", LibraryID: "UR_owner"},
			SurveyLink: SurveyLink{SurveyID: "SV_test", ExpirationDate: mustTime(t, "2024-04-01T00:00:00Z"), LinkType: "Individual"},
			Stats:      DistributionStats{Sent: 120, Failed: 1, Started: 40, Bounced: 2, Opened: 80, Finished: 33, Blocked: 3},
		}
		if d != want {
			t.Fatalf("distribution = %+v\nwant           %+v", d, want)
		}
		if r := p.Elements[1]; r.ParentDistributionID != "EMD_Invite0000001" || r.RequestType != RequestReminder || !r.SendDate.IsZero() || r.Stats != (DistributionStats{}) {
			t.Fatalf("reminder = %+v", r)
		}
		if p.Elements[2].RequestType != "BrandNewType" {
			t.Fatalf("unknown request type lost: %q", p.Elements[2].RequestType)
		}
	})
	t.Run("whoami decodes", func(t *testing.T) {
		t.Parallel()
		w, _, err := decodeEnvelope[WhoAmI](readTestdata(t, "whoami.json"))
		want := WhoAmI{BrandID: "acme", UserID: "UR_admin", UserName: "admin#acme", AccountType: AccountTypeBrandAdmin, FirstName: "Ada", LastName: "Admin", Email: "ada@example.com", Datacenter: "iad1"}
		if err != nil || w != want {
			t.Fatalf("whoami %+v, err %v", w, err)
		}
	})
	values := []struct {
		name, in string
		b        bool
		n        int
	}{
		{"true is true", `true`, true, 0},
		{"the string 1 is true and one", `"1"`, true, 1},
		{"the number 1 is true and one", `1`, true, 1},
		{"the string 0 is false", `"0"`, false, 0},
		{"null is false and zero", `null`, false, 0},
		{"a numeric string is a number", `"1000"`, true, 1000},
		{"a float is truncated", `12.0`, true, 12},
		{"garbage is false and zero", `"maybe"`, false, 0},
		{"an object is false and zero", `{"a":1}`, false, 0},
	}
	for _, tt := range values {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b lenientBool
			var n lenientInt
			if json.Unmarshal([]byte(tt.in), &b) != nil || json.Unmarshal([]byte(tt.in), &n) != nil || bool(b) != tt.b || int(n) != tt.n {
				t.Fatalf("%s → %v, %d; want %v, %d", tt.in, b, n, tt.b, tt.n)
			}
		})
	}
	t.Run("a truncated page is a retryable decode error", func(t *testing.T) {
		t.Parallel()
		body := readTestdata(t, "history-lenient.json")
		_, err := decodePage[HistoryEntry](body[:len(body)/2])
		de, ok := err.(*decodeError)
		if !ok || !de.retryable {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("a page whose elements are not a list is a final decode error", func(t *testing.T) {
		t.Parallel()
		_, err := decodePage[HistoryEntry]([]byte(`{"result":{"elements":{"a":1}},"meta":{}}`))
		de, ok := err.(*decodeError)
		if !ok || de.retryable {
			t.Fatalf("err = %#v", err)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"result":{"elements":[],"nextPage":null},"meta":{"httpStatus":"200 - OK","requestId":null}}`))
	f.Add(readTestdata(f, "history-lenient.json"))
	f.Add(readTestdata(f, "links-lenient.json"))
	f.Add(readTestdata(f, "distributions.json"))
	f.Add([]byte(`{"result":null}`))
	f.Add([]byte(`{"result":{"elements":[null,{"sentAt":1}],"nextPage":"x"}}`))
	// Odd shapes: keys named twice or in another case, a nextPage that is no
	// string, a result that is no object, escapes in keys and values.
	for _, s := range []string{
		`{"result":{"Elements":[{"contactId":"a"}],"elements":[null, {"sentAt":1} ]}}`, `{"result":{"elements":{"a":1}}}`,
		`{"result":{"elements":[],"nextPage":"a\u0062"},"meta":{"requestId":"r"}}`, "{\"result\":{\"elements\":[],\"nextPage\":\"\xff\"}}",
		`{"result":{"elements":[],"nextPage":1}}`, `{"result":{},"result":{"elements":[]}}`, `{"Result":{"elements":[]}}`,
		`{"result":{"elements":[],"NEXTPAGE":"x"}}`, `{"result":{"elements":[]},"meta":1}`, `null`, `[]`, `{"result":[]}`,
		` {"result" : {"elements" : [ {} , null ] , "nextPage" : " x "} } `,
		`{"result":{"elements":[{"co\u006etactId":"x","contactId":1,"unsubscribed":"TRUE","externalDataReference":[1]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, check := range []func() (int, string, error){
			func() (int, string, error) {
				p, err := decodePage[HistoryEntry](body)
				return len(p.Elements), p.NextPage, pageInvariant(p, err)
			},
			func() (int, string, error) {
				p, err := decodePage[Link](body)
				return len(p.Elements), p.NextPage, pageInvariant(p, err)
			},
			func() (int, string, error) {
				p, err := decodePage[Distribution](body)
				return len(p.Elements), p.NextPage, pageInvariant(p, err)
			},
		} {
			n, next, err := check()
			if err != nil {
				t.Fatal(err)
			}
			if n > len(body) {
				t.Fatalf("%d elements from %d bytes", n, len(body))
			}
			if next != strings.TrimSpace(next) {
				t.Fatalf("nextPage %q not trimmed", next)
			}
		}
	})
}

// pageInvariant: an error comes with no elements and a decodeError; success
// comes with a non-nil slice, and suggestedHost never panics on the notice.
func pageInvariant[T any](p page[T], err error) error {
	_ = suggestedHost(p.Meta.Notice)
	if err != nil {
		if _, ok := err.(*decodeError); !ok {
			return fmt.Errorf("error of type %T", err)
		}
		if p.Elements != nil || p.NextPage != "" {
			return fmt.Errorf("error with data: %v", err)
		}
		return nil
	}
	if p.Elements == nil {
		return fmt.Errorf("success with a nil page")
	}
	return nil
}

func historyPage(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"result":{"elements":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"contactId":"CID_%015d","contactLookupId":"MLRP_%015d","distributionId":"EMD_RmjB8Gfpjlki6ms","status":"SurveyStarted",`+
			`"surveyLink":"https://org.az1.qualtrics.com/jfe/form/SV_06PSFx0kpItCz0q?Q_CHL=email&Q_DL=EMD_RmjB8Gfpjlki6ms_06PSFx0kpItCz0q_MLRP_%015d",`+
			`"contactFrequencyRuleId":null,"responseId":null,"responseCompletedAt":null,"sentAt":"2021-06-01T18:59:23.161Z",`+
			`"openedAt":"2021-06-01T19:03:11.000Z","responseStartedAt":"2021-06-01T19:03:19.000Z","surveySessionId":"FS_3HS5kKiC5bhRMpO"}`, i, i, i)
	}
	b.WriteString(`],"nextPage":"https://iad1.qualtrics.com/API/v3/distributions/EMD_RmjB8Gfpjlki6ms/history?skipToken=abc"},` +
		`"meta":{"requestId":"27583758-d81a-4be0-8723-f9893ca4d943","httpStatus":"200 - OK"}}`)
	return []byte(b.String())
}

func BenchmarkDecodeHistoryPage(b *testing.B) {
	body := historyPage(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decodePage[HistoryEntry](body)
		if err != nil || len(p.Elements) != 100 {
			b.Fatal(err)
		}
	}
}

// A NUL in any string Qualtrics sends (a survey name, a recipient's name, a
// link) is removed at decoding: PostgreSQL refuses it in text, and one such
// name made a unit's COPY fail on every run. An escaped backslash followed by
// "u0000" is text, and stays.
func TestNULsAreStrippedFromEveryDecodedString(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`"a\u0000b"`:            `"ab"`,
		`"\u0000\u0000x\u0000"`: `"x"`,
		`"a\\u0000b"`:           `"a\\u0000b"`,
		`"a\\\u0000b"`:          `"a\\b"`,
		`"plain"`:               `"plain"`,
		`"\u00000"`:             `"0"`,
	} {
		if got := string(stripNULs([]byte(raw))); got != want {
			t.Errorf("stripNULs(%s) = %s, want %s", raw, got, want)
		}
	}
	meta := `"meta":{"httpStatus":"200 - OK","requestId":"r"}`
	links := `{"result":{"elements":[{"contactId":"CID_1\u0000","firstName":"Ann\u0000e","lastName":"O\\u0000K",` +
		`"email":"ann@example.com\u0000","link":"https://x.qualtrics.com/jfe\u0000","externalDataReference":"r\u0000"}],` +
		`"nextPage":null},` + meta + `}`
	check := func(what string, l Link) {
		t.Helper()
		if l.ContactID != "CID_1" || l.FirstName != "Anne" || l.LastName != `O\u0000K` || l.Email != "ann@example.com" ||
			l.Link != "https://x.qualtrics.com/jfe" || l.ExternalDataReference != "r" {
			t.Errorf("%s: %+v", what, l)
		}
	}
	p, err := decodePage[Link]([]byte(links))
	if err != nil || len(p.Elements) != 1 {
		t.Fatalf("decodePage: %v %+v", err, p)
	}
	check("links page", p.Elements[0])
	// A key that matches its field only case-insensitively is read all the same.
	p, err = decodePage[Link]([]byte(strings.Replace(links, `"contactId"`, `"ContactID"`, 1)))
	if err != nil || len(p.Elements) != 1 {
		t.Fatalf("decodePage (key in another case): %v %+v", err, p)
	}
	check("links page, key in another case", p.Elements[0])
	hist, err := decodePage[HistoryEntry]([]byte(`{"result":{"elements":[{"contactId":"C\u0000","status":"Opened\u0000"}]},` + meta + `}`))
	if err != nil || len(hist.Elements) != 1 || hist.Elements[0].ContactID != "C" || hist.Elements[0].Status != "Opened" {
		t.Errorf("history page: %v %+v", err, hist.Elements)
	}
	sv, _, err := decodeEnvelope[Survey]([]byte(`{"result":{"id":"SV_1","name":"Pulse\u0000 Q3"},` + meta + `}`))
	if err != nil || sv.Name != "Pulse Q3" {
		t.Errorf("envelope: %q, %v", sv.Name, err)
	}
	surveys, err := decodePage[Survey]([]byte(`{"result":{"elements":[{"id":"SV_2","name":"\u0000Exit"}],"nextPage":""},` + meta + `}`))
	if err != nil || len(surveys.Elements) != 1 || surveys.Elements[0].Name != "Exit" {
		t.Errorf("survey page: %v %+v", err, surveys.Elements)
	}
}
