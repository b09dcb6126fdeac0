package qualtricssim

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes QMST_2.2, GED_3, DCD_7, CP_TD_GER_NP, ESSG_2 and MSTC_3 are recorded from the real
// API; the others (GD_*, GSI_1, RL_1, Q_500, GED_4, ESS_*) are ours, because clients must key on
// the HTTP status and store the code, never branch on an unknown code.
var (
	errSurveyNotFound = &apiError{http.StatusNotFound, "QMST_2.2", "Survey not found."}
	errDistNotFound   = &apiError{http.StatusNotFound, "GED_3", "Distribution not found."}
	errNeedSurveyID   = &apiError{http.StatusBadRequest, "GD_1", "surveyId is a required query parameter."}
	errBadSkipToken   = &apiError{http.StatusBadRequest, "GD_2", "Invalid skipToken."}
)

func (s *Server) whoami(_ *http.Request, c *call) (any, *apiError) {
	u := c.user
	return map[string]any{
		"brandId": c.brand.info.ID, "userId": u.ID, "userName": u.UserName, "accountType": u.AccountType,
		"firstName": u.FirstName, "lastName": u.LastName, "email": u.Email, "datacenter": c.brand.info.Datacenter,
	}, nil
}

// visible says whether the caller may see a survey: Brand Admins see the whole brand, other
// users only what they own (sharing is not simulated).
func (c *call) visible(st *surveyState) bool {
	return st != nil && st.brand == c.brand && (c.admin() || st.sv.OwnerID == c.user.ID)
}

type list struct {
	Elements any     `json:"elements"`
	NextPage *string `json:"nextPage"`
}

type wireSurveyListItem struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	OwnerID      string  `json:"ownerId"`
	LastModified *string `json:"lastModified"`
	CreationDate *string `json:"creationDate,omitempty"`
	IsActive     bool    `json:"isActive"`
}

func (s *Server) listSurveys(r *http.Request, c *call) (any, *apiError) {
	offset := 0
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, &apiError{http.StatusBadRequest, "GSL_1", "Invalid offset."}
		}
		offset = n
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*surveyState
	for _, st := range c.brand.surveys {
		if c.visible(st) {
			all = append(all, st)
		}
	}
	start := min(offset, len(all))
	end := min(start+pageSize("surveys/"+c.brand.info.ID, start), len(all))
	out := make([]wireSurveyListItem, 0, end-start)
	for _, st := range all[start:end] {
		out = append(out, wireSurveyListItem{
			ID: st.sv.ID, Name: st.sv.Name, OwnerID: st.sv.OwnerID, LastModified: ts(st.sv.LastModifiedDate, timeSec),
			CreationDate: ts(st.sv.CreationDate, timeSec), IsActive: st.sv.IsActive,
		})
	}
	res := list{Elements: out}
	if end < len(all) {
		res.NextPage = nextPage(r, c, "offset", strconv.Itoa(end))
	}
	return res, nil
}

type wireSurvey struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	OwnerID          string         `json:"ownerId"`
	OrganizationID   string         `json:"organizationId"`
	IsActive         bool           `json:"isActive"`
	CreationDate     *string        `json:"creationDate"`
	LastModifiedDate *string        `json:"lastModifiedDate"`
	Expiration       map[string]any `json:"expiration"`
	Questions        map[string]any `json:"questions"`
	ExportColumnMap  map[string]any `json:"exportColumnMap"`
	Blocks           map[string]any `json:"blocks"`
	Flow             []any          `json:"flow"`
	EmbeddedData     []any          `json:"embeddedData"`
	Comments         map[string]any `json:"comments"`
	LoopAndMerge     map[string]any `json:"loopAndMerge"`
	ResponseCounts   map[string]int `json:"responseCounts"`
}

func (s *Server) getSurvey(r *http.Request, c *call) (any, *apiError) {
	s.mu.RLock()
	st := s.surveys[r.PathValue("id")]
	if !c.visible(st) {
		s.mu.RUnlock()
		return nil, errSurveyNotFound
	}
	sv := st.sv
	s.mu.RUnlock()
	qs := fakeQuestions(sv.ID)
	questions, exportMap, elements := map[string]any{}, map[string]any{}, []any{}
	for _, q := range qs {
		questions[q.id] = map[string]any{
			"questionType":  map[string]any{"type": "MC", "selector": "SAVR", "subSelector": "TX"},
			"questionText":  q.text,
			"questionLabel": nil,
			"validation":    map[string]any{"doesForceResponse": q.forced},
			"questionName":  q.name,
			"choices":       q.choices,
		}
		exportMap[q.name] = map[string]any{"question": q.id}
		elements = append(elements, map[string]any{"type": "Question", "questionId": q.id})
	}
	block := "BL_" + strings.TrimPrefix(sv.ID, "SV_")
	return wireSurvey{
		ID: sv.ID, Name: sv.Name, OwnerID: sv.OwnerID, OrganizationID: st.brand.info.OrganizationID,
		IsActive: sv.IsActive, CreationDate: ts(sv.CreationDate, timeSec), LastModifiedDate: ts(sv.LastModifiedDate, timeSec),
		Expiration:      map[string]any{"startDate": ts(sv.StartDate, timeSec), "endDate": ts(sv.EndDate, timeSec)},
		Questions:       questions,
		ExportColumnMap: exportMap,
		Blocks:          map[string]any{block: map[string]any{"description": "Default Question Block", "elements": elements}},
		Flow:            []any{map[string]any{"id": block, "type": "Block"}},
		EmbeddedData:    []any{},
		Comments:        map[string]any{},
		LoopAndMerge:    map[string]any{},
		ResponseCounts: map[string]int{
			"auditable": sv.ResponseCounts.Auditable, "generated": sv.ResponseCounts.Generated, "deleted": sv.ResponseCounts.Deleted,
		},
	}, nil
}

type fakeQuestion struct {
	id, name, text string
	forced         bool
	choices        map[string]any
}

var questionTexts = []string{
	"Overall, how satisfied are you with <strong>%s</strong>?",
	"How likely are you to recommend us to a colleague? <span style=\"color:#8e44ad;\">(0–10)</span>",
	"How often do you use the service?",
	"Was the <a href=\"https://example.com/help\">help page</a> useful?",
	"Anything else you'd like to tell us? Ça va, ¿qué tal?",
}

var choiceTexts = []string{"Très bien", "<em>Good</em>", "Neither good nor bad", "Poor", "N/A"}

// fakeQuestions derives a small question set from the survey id so payloads have realistic
// size and HTML content for any survey, including ones added at run time.
func fakeQuestions(surveyID string) []fakeQuestion {
	h := fnv.New64a()
	_, _ = h.Write([]byte(surveyID))
	r := rand.New(rand.NewPCG(h.Sum64(), 1))
	n := 2 + r.IntN(4)
	out := make([]fakeQuestion, n)
	for i := range out {
		num := strconv.Itoa(i + 1)
		choices := map[string]any{}
		for j, t := range choiceTexts[:2+r.IntN(4)] {
			k := strconv.Itoa(j + 1)
			choices[k] = map[string]any{
				"recode": k, "description": t, "choiceText": t, "imageDescription": nil, "variableName": nil, "analyze": true,
			}
		}
		out[i] = fakeQuestion{
			id: "QID" + num, name: "Q" + num, forced: r.IntN(2) == 0, choices: choices,
			text: strings.ReplaceAll(questionTexts[r.IntN(len(questionTexts))], "%s", "this survey"),
		}
	}
	return out
}

func (s *Server) getSurveyDefinition(r *http.Request, c *call) (any, *apiError) {
	s.mu.RLock()
	st := s.surveys[r.PathValue("id")]
	if !c.visible(st) {
		s.mu.RUnlock()
		return nil, errSurveyNotFound
	}
	sv, b := st.sv, st.brand.info
	s.mu.RUnlock()
	status := "Inactive"
	if sv.IsActive {
		status = "Active"
	}
	qs := fakeQuestions(sv.ID)
	questions := map[string]any{}
	for _, q := range qs {
		questions[q.id] = map[string]any{
			"QuestionText": q.text, "DataExportTag": q.name, "QuestionType": "MC", "Selector": "SAVR",
			"SubSelector": "TX", "QuestionID": q.id,
		}
	}
	expiration := any(nil)
	if !sv.EndDate.IsZero() {
		expiration = "on"
	}
	return map[string]any{
		"QuestionCount": strconv.Itoa(len(qs)),
		"SurveyOptions": map[string]any{"BackButton": "false", "SaveAndContinue": "true", "SurveyExpiration": expiration, "SurveyProtection": "PublicSurvey"},
		"SurveyID":      sv.ID,
		"SurveyName":    sv.Name,
		"SurveyStatus":  status,
		"LastModified":  ts(sv.LastModifiedDate, timeSec),
		"BrandID":       b.ID,
		"OwnerID":       sv.OwnerID,
		"LastAccessed":  nil,
		"CreatorID":     sv.OwnerID,
		"LastActivated": ts(sv.StartDate, timeSec),
		"Questions":     questions,
		"Blocks":        map[string]any{},
		"ResponseSets":  map[string]any{"RS_" + strings.TrimPrefix(sv.ID, "SV_"): "Default Response Set"},
		"SurveyFlow":    map[string]any{"Type": "Root", "FlowID": "FL_1", "Flow": []any{}},
		"Scoring":       map[string]any{"ScoringCategories": []any{}},
		"ProjectInfo":   map[string]any{"SurveyID": sv.ID, "ProjectCategory": "CORE", "ProjectType": "CORE"},
		"BrandBaseURL":  b.BaseURL,
	}, nil
}

type wireDistribution struct {
	ID                   string  `json:"id"`
	ParentDistributionID *string `json:"parentDistributionId"`
	OwnerID              string  `json:"ownerId"`
	OrganizationID       string  `json:"organizationId"`
	RequestStatus        string  `json:"requestStatus"`
	RequestType          string  `json:"requestType"`
	SendDate             *string `json:"sendDate"`
	CreatedDate          *string `json:"createdDate"`
	ModifiedDate         *string `json:"modifiedDate"`
	Headers              struct {
		FromEmail    string `json:"fromEmail"`
		ReplyToEmail string `json:"replyToEmail"`
		FromName     string `json:"fromName"`
		Subject      string `json:"subject"`
	} `json:"headers"`
	Recipients struct {
		MailingListID *string `json:"mailingListId"`
		ContactID     *string `json:"contactId"`
		LibraryID     string  `json:"libraryId"`
		SampleID      *string `json:"sampleId"`
	} `json:"recipients"`
	Message struct {
		LibraryID   string  `json:"libraryId"`
		MessageID   string  `json:"messageId"`
		MessageText *string `json:"messageText"`
	} `json:"message"`
	SurveyLink struct {
		SurveyID       string  `json:"surveyId"`
		ExpirationDate *string `json:"expirationDate"`
		LinkType       string  `json:"linkType"`
	} `json:"surveyLink"`
	EmbeddedData any   `json:"embeddedData"`
	Stats        Stats `json:"stats"`
}

func wireDist(ds *distState) wireDistribution {
	d := &ds.d
	var w wireDistribution
	w.ID = d.ID
	w.ParentDistributionID = strOrNil(d.ParentDistributionID)
	w.OwnerID = d.OwnerID
	w.OrganizationID = ds.brand.info.OrganizationID
	w.RequestStatus = d.RequestStatus
	w.RequestType = d.RequestType
	w.SendDate = ts(d.SendDate, timeSec)
	w.CreatedDate = ts(d.CreatedDate, timeSec)
	w.ModifiedDate = ts(d.ModifiedDate, timeSec)
	w.Headers.FromEmail, w.Headers.ReplyToEmail = d.Headers.FromEmail, d.Headers.ReplyToEmail
	w.Headers.FromName, w.Headers.Subject = d.Headers.FromName, d.Headers.Subject
	w.Recipients.MailingListID = strOrNil(d.MailingListID)
	w.Recipients.LibraryID = d.OwnerID
	w.Message.LibraryID = d.OwnerID
	w.Message.MessageID = "MS_" + strings.TrimPrefix(d.ID, "EMD_")
	w.SurveyLink.SurveyID = d.SurveyID
	w.SurveyLink.ExpirationDate = ts(d.LinkExpiration, timeSec)
	w.SurveyLink.LinkType = "Individual"
	w.Stats = d.Stats
	return w
}

func parseFilterTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *Server) listDistributions(r *http.Request, c *call) (any, *apiError) {
	q := r.URL.Query()
	surveyID := q.Get("surveyId")
	if surveyID == "" {
		return nil, errNeedSurveyID
	}
	var from, to time.Time
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"sendStartDate", &from}, {"sendEndDate", &to}} {
		if v := q.Get(f.name); v != "" {
			t, ok := parseFilterTime(v)
			if !ok {
				return nil, &apiError{http.StatusBadRequest, "GD_3", "Invalid " + f.name + "."}
			}
			*f.t = t
		}
	}
	typ := q.Get("distributionRequestType")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !c.visible(s.surveys[surveyID]) {
		return nil, errSurveyNotFound
	}
	var all []*distState
	for _, ds := range c.brand.bySurvey[surveyID] {
		d := &ds.d
		if (typ != "" && d.RequestType != typ) || (!from.IsZero() && d.SendDate.Before(from)) || (!to.IsZero() && d.SendDate.After(to)) {
			continue
		}
		all = append(all, ds)
	}
	start := 0
	if tok := q.Get("skipToken"); tok != "" {
		start = -1
		for i, ds := range all {
			if ds.d.ID == tok {
				start = i
				break
			}
		}
		if start < 0 {
			return nil, errBadSkipToken
		}
	}
	end := min(start+pageSize("distributions/"+surveyID, start), len(all))
	out := make([]wireDistribution, 0, end-start)
	for _, ds := range all[start:end] {
		out = append(out, wireDist(ds))
	}
	res := list{Elements: out}
	if end < len(all) {
		res.NextPage = nextPage(r, c, "skipToken", all[end].d.ID)
	}
	return res, nil
}

// distribution finds a distribution the caller may see; surveyID, when given, must match.
func (s *Server) distribution(c *call, id, surveyID string) *distState {
	ds := s.dists[id]
	if ds == nil || ds.brand != c.brand || (surveyID != "" && ds.d.SurveyID != surveyID) || !c.visible(s.surveys[ds.d.SurveyID]) {
		return nil
	}
	return ds
}

func (s *Server) getDistribution(r *http.Request, c *call) (any, *apiError) {
	surveyID := r.URL.Query().Get("surveyId")
	if surveyID == "" {
		return nil, errNeedSurveyID
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds := s.distribution(c, r.PathValue("id"), surveyID)
	if ds == nil {
		return nil, errDistNotFound
	}
	return wireDist(ds), nil
}

// recipientPage slices one page of a distribution's recipients after the skipToken (a
// contactLookupId), using the index so a page costs its own size, not the distribution's.
func recipientPage(r *http.Request, ds *distState, key string) (page []Recipient, next string, aerr *apiError) {
	start := 0
	if tok := r.URL.Query().Get("skipToken"); tok != "" {
		i, ok := ds.byLookup[tok]
		if !ok {
			return nil, "", errBadSkipToken
		}
		start = i
	}
	all := ds.d.Recipients
	end := min(start+pageSize(key+"/"+ds.d.ID, start), len(all))
	if end < len(all) {
		next = all[end].ContactLookupID
	}
	return all[start:end], next, nil
}

type wireHistory struct {
	ContactID              string  `json:"contactId"`
	ContactLookupID        string  `json:"contactLookupId"`
	DistributionID         string  `json:"distributionId"`
	Status                 string  `json:"status"`
	SurveyLink             string  `json:"surveyLink"`
	ContactFrequencyRuleID *string `json:"contactFrequencyRuleId"`
	ResponseID             *string `json:"responseId"`
	ResponseCompletedAt    *string `json:"responseCompletedAt"`
	SentAt                 *string `json:"sentAt"`
	OpenedAt               *string `json:"openedAt"`
	ResponseStartedAt      *string `json:"responseStartedAt"`
	SurveySessionID        *string `json:"surveySessionId"`
}

func (s *Server) history(r *http.Request, c *call) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds := s.distribution(c, r.PathValue("id"), "")
	if ds == nil {
		return nil, errDistNotFound
	}
	if c.brand.info.NoDirectoryLicence {
		// [guess] the code; the 404 itself is documented for brands without XM Directory.
		return nil, &apiError{http.StatusNotFound, "GED_4", "XM Directory is not enabled for this brand."}
	}
	if ds.d.RequestType == RequestTestEmail {
		return nil, &apiError{http.StatusBadRequest, "CP_TD_GER_NP", "Distribution history is not available for test distributions."}
	}
	page, next, aerr := recipientPage(r, ds, "history")
	if aerr != nil {
		return nil, aerr
	}
	out := make([]wireHistory, len(page))
	for i := range page {
		rc := &page[i]
		out[i] = wireHistory{
			ContactID: rc.ContactID, ContactLookupID: rc.ContactLookupID, DistributionID: ds.d.ID, Status: rc.Status,
			SurveyLink: rc.Link, ResponseID: strOrNil(rc.ResponseID), ResponseCompletedAt: ts(rc.ResponseCompletedAt, timeMs),
			SentAt: ts(rc.SentAt, timeMs), OpenedAt: ts(rc.OpenedAt, timeMs), ResponseStartedAt: ts(rc.ResponseStartedAt, timeMs),
			SurveySessionID: strOrNil(rc.SurveySessionID),
		}
	}
	res := list{Elements: out}
	if next != "" {
		res.NextPage = nextPage(r, c, "skipToken", next)
	}
	return res, nil
}

type wireLink struct {
	ContactID                string  `json:"contactId"`
	TransactionID            *string `json:"transactionId"`
	Link                     string  `json:"link"`
	ExceededContactFrequency bool    `json:"exceededContactFrequency"`
	LinkExpiration           *string `json:"linkExpiration"`
	Status                   string  `json:"status"`
	LastName                 *string `json:"lastName"`
	FirstName                *string `json:"firstName"`
	ExternalDataReference    *string `json:"externalDataReference"`
	Email                    string  `json:"email"`
	Unsubscribed             any     `json:"unsubscribed"`
}

// linkStatus is what links say about a recipient, which is coarser than history and may lag.
func linkStatus(rc *Recipient) string {
	if rc.LinkStatus != "" {
		return rc.LinkStatus
	}
	if statusRank(rc.Status) == 0 {
		return "Email not sent"
	}
	return "Email sent"
}

func (s *Server) links(r *http.Request, c *call) (any, *apiError) {
	surveyID := r.URL.Query().Get("surveyId")
	if surveyID == "" {
		return nil, errNeedSurveyID
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ds := s.distribution(c, r.PathValue("id"), surveyID)
	if ds == nil {
		return nil, errDistNotFound
	}
	page, next, aerr := recipientPage(r, ds, "links")
	if aerr != nil {
		return nil, aerr
	}
	out := make([]wireLink, len(page))
	for i := range page {
		rc := &page[i]
		var unsub any = rc.Unsubscribed
		if rc.LegacyUnsubscribed {
			unsub = "0"
			if rc.Unsubscribed {
				unsub = "1"
			}
		}
		out[i] = wireLink{
			ContactID: rc.ContactID, Link: rc.Link, LinkExpiration: ts(rc.LinkExpiration, timeSec), Status: linkStatus(rc),
			LastName: strOrNil(rc.LastName), FirstName: strOrNil(rc.FirstName), ExternalDataReference: strOrNil(rc.ExternalDataReference),
			Email: rc.Email, Unsubscribed: unsub,
		}
	}
	res := list{Elements: out}
	if next != "" {
		res.NextPage = nextPage(r, c, "skipToken", next)
	}
	return res, nil
}
