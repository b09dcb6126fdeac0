package qualtrics

import (
	"encoding/json"
	"time"
)

// The wire types mirror the API's answers. Each one with a field the API sends
// in more than one shape decodes through an unexported twin that shadows those
// fields with lenient types; the exported field types stay plain Go.

// WhoAmI is the answer of GET /whoami.
type WhoAmI struct {
	BrandID     string `json:"brandId"`
	UserID      string `json:"userId"`
	UserName    string `json:"userName"`
	AccountType string `json:"accountType"` // "UT_BRANDADMIN" for a Brand Admin token
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	Email       string `json:"email"`
	Datacenter  string `json:"datacenter"`
}

// AccountTypeBrandAdmin marks a Brand Admin token in WhoAmI.AccountType.
const AccountTypeBrandAdmin = "UT_BRANDADMIN"

// Survey is an element of GET /surveys. CreationDate is zero for old surveys.
type Survey struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	OwnerID      string    `json:"ownerId"`
	LastModified time.Time `json:"lastModified"`
	CreationDate time.Time `json:"creationDate"`
	IsActive     bool      `json:"isActive"`

	bad *malformedDates // nil unless a date could not be read
}

func (s *Survey) malformed() *malformedDates { return s.bad }

func (s *Survey) UnmarshalJSON(b []byte) error {
	type plain Survey
	var w struct {
		plain
		LastModified lenientTime `json:"lastModified"`
		CreationDate lenientTime `json:"creationDate"`
		IsActive     lenientBool `json:"isActive"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Survey(w.plain)
	s.LastModified, s.CreationDate, s.IsActive = w.LastModified.Time, w.CreationDate.Time, bool(w.IsActive)
	s.bad = nil
	noteDate(&s.bad, "lastModified", w.LastModified)
	noteDate(&s.bad, "creationDate", w.CreationDate)
	return nil
}

// SurveyDetail is GET /surveys/{id} without the question set, which is skipped
// while decoding and never kept.
type SurveyDetail struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	OwnerID          string         `json:"ownerId"`
	OrganizationID   string         `json:"organizationId"`
	IsActive         bool           `json:"isActive"`
	CreationDate     time.Time      `json:"creationDate"`
	LastModifiedDate time.Time      `json:"lastModifiedDate"`
	Expiration       Expiration     `json:"expiration"`
	ResponseCounts   ResponseCounts `json:"responseCounts"`

	bad *malformedDates // nil unless a date could not be read
}

func (s *SurveyDetail) malformed() *malformedDates { return s.bad }

// Expiration bounds the period a survey accepts responses; zero means open.
type Expiration struct {
	StartDate time.Time `json:"startDate"`
	EndDate   time.Time `json:"endDate"`

	bad *malformedDates // nil unless a date could not be read
}

func (e *Expiration) UnmarshalJSON(b []byte) error {
	var w struct {
		StartDate lenientTime `json:"startDate"`
		EndDate   lenientTime `json:"endDate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Expiration{StartDate: w.StartDate.Time, EndDate: w.EndDate.Time}
	noteDate(&e.bad, "startDate", w.StartDate)
	noteDate(&e.bad, "endDate", w.EndDate)
	return nil
}

// ResponseCounts of a survey.
type ResponseCounts struct {
	Auditable int `json:"auditable"`
	Generated int `json:"generated"`
	Deleted   int `json:"deleted"`
}

func (r *ResponseCounts) UnmarshalJSON(b []byte) error {
	var w struct {
		Auditable lenientInt `json:"auditable"`
		Generated lenientInt `json:"generated"`
		Deleted   lenientInt `json:"deleted"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = ResponseCounts{Auditable: int(w.Auditable), Generated: int(w.Generated), Deleted: int(w.Deleted)}
	return nil
}

func (s *SurveyDetail) UnmarshalJSON(b []byte) error {
	type plain SurveyDetail
	var w struct {
		plain
		IsActive         lenientBool `json:"isActive"`
		CreationDate     lenientTime `json:"creationDate"`
		LastModifiedDate lenientTime `json:"lastModifiedDate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = SurveyDetail(w.plain)
	s.IsActive, s.CreationDate, s.LastModifiedDate = bool(w.IsActive), w.CreationDate.Time, w.LastModifiedDate.Time
	s.bad = nil
	noteDate(&s.bad, "creationDate", w.CreationDate)
	noteDate(&s.bad, "lastModifiedDate", w.LastModifiedDate)
	addDates(&s.bad, "expiration.", s.Expiration.bad)
	return nil
}

// SurveyMeta is the metadata part of GET /survey-definitions/{id}. BrandBaseURL
// is the brand's (possibly vanity) web host, empty when the API omits it.
type SurveyMeta struct {
	SurveyID      string    `json:"SurveyID"`
	SurveyName    string    `json:"SurveyName"`
	SurveyStatus  string    `json:"SurveyStatus"`
	BrandID       string    `json:"BrandID"`
	OwnerID       string    `json:"OwnerID"`
	CreatorID     string    `json:"CreatorID"`
	QuestionCount int       `json:"QuestionCount"`
	LastModified  time.Time `json:"LastModified"`
	LastAccessed  time.Time `json:"LastAccessed"`
	LastActivated time.Time `json:"LastActivated"`
	BrandBaseURL  string    `json:"BrandBaseURL"`

	bad *malformedDates // nil unless a date could not be read
}

func (m *SurveyMeta) malformed() *malformedDates { return m.bad }

func (m *SurveyMeta) UnmarshalJSON(b []byte) error {
	type plain SurveyMeta
	var w struct {
		plain
		QuestionCount lenientInt  `json:"QuestionCount"`
		LastModified  lenientTime `json:"LastModified"`
		LastAccessed  lenientTime `json:"LastAccessed"`
		LastActivated lenientTime `json:"LastActivated"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = SurveyMeta(w.plain)
	m.QuestionCount = int(w.QuestionCount)
	m.LastModified, m.LastAccessed, m.LastActivated = w.LastModified.Time, w.LastAccessed.Time, w.LastActivated.Time
	m.bad = nil
	noteDate(&m.bad, "LastModified", w.LastModified)
	noteDate(&m.bad, "LastAccessed", w.LastAccessed)
	noteDate(&m.bad, "LastActivated", w.LastActivated)
	return nil
}

// RequestType of a distribution. Unknown values are kept as they come.
type RequestType string

const (
	RequestInvite          RequestType = "Invite"
	RequestReminder        RequestType = "Reminder"
	RequestThankYou        RequestType = "ThankYou"
	RequestEmail           RequestType = "Email"
	RequestPortal          RequestType = "Portal"
	RequestPortalInvite    RequestType = "PortalInvite"
	RequestGeneratedInvite RequestType = "GeneratedInvite"
	RequestTestEmail       RequestType = "TestEmail"
)

// Distribution is an element of GET /distributions and the answer of GET
// /distributions/{id}. ParentDistributionID is set on reminders and thank-yous.
type Distribution struct {
	ID                   string            `json:"id"`
	ParentDistributionID string            `json:"parentDistributionId"`
	OwnerID              string            `json:"ownerId"`
	OrganizationID       string            `json:"organizationId"`
	RequestStatus        string            `json:"requestStatus"`
	RequestType          RequestType       `json:"requestType"`
	SendDate             time.Time         `json:"sendDate"`
	CreatedDate          time.Time         `json:"createdDate"`
	ModifiedDate         time.Time         `json:"modifiedDate"`
	Headers              MailHeaders       `json:"headers"`
	Recipients           Recipients        `json:"recipients"`
	SurveyLink           SurveyLink        `json:"surveyLink"`
	Stats                DistributionStats `json:"stats"`

	bad *malformedDates // nil unless a date could not be read
}

func (d *Distribution) malformed() *malformedDates { return d.bad }

func (d *Distribution) UnmarshalJSON(b []byte) error {
	type plain Distribution
	var w struct {
		plain
		SendDate     lenientTime `json:"sendDate"`
		CreatedDate  lenientTime `json:"createdDate"`
		ModifiedDate lenientTime `json:"modifiedDate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = Distribution(w.plain)
	d.SendDate, d.CreatedDate, d.ModifiedDate = w.SendDate.Time, w.CreatedDate.Time, w.ModifiedDate.Time
	d.bad = nil
	noteDate(&d.bad, "sendDate", w.SendDate)
	noteDate(&d.bad, "createdDate", w.CreatedDate)
	noteDate(&d.bad, "modifiedDate", w.ModifiedDate)
	addDates(&d.bad, "surveyLink.", d.SurveyLink.bad)
	return nil
}

// MailHeaders of an email distribution.
type MailHeaders struct {
	FromEmail    string `json:"fromEmail"`
	ReplyToEmail string `json:"replyToEmail"`
	FromName     string `json:"fromName"`
	Subject      string `json:"subject"`
}

// Recipients of a distribution: usually one mailing list, sometimes one contact.
type Recipients struct {
	MailingListID string `json:"mailingListId"`
	ContactID     string `json:"contactId"`
	LibraryID     string `json:"libraryId"`
	SampleID      string `json:"sampleId"`
}

// SurveyLink of a distribution; ExpirationDate is when its links stop working.
type SurveyLink struct {
	SurveyID       string    `json:"surveyId"`
	ExpirationDate time.Time `json:"expirationDate"`
	LinkType       string    `json:"linkType"`

	bad *malformedDates // nil unless a date could not be read
}

func (l *SurveyLink) UnmarshalJSON(b []byte) error {
	type plain SurveyLink
	var w struct {
		plain
		ExpirationDate lenientTime `json:"expirationDate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*l = SurveyLink(w.plain)
	l.ExpirationDate = w.ExpirationDate.Time
	l.bad = nil
	noteDate(&l.bad, "expirationDate", w.ExpirationDate)
	return nil
}

// DistributionStats are the counters of a distribution.
type DistributionStats struct {
	Sent       int `json:"sent"`
	Failed     int `json:"failed"`
	Started    int `json:"started"`
	Bounced    int `json:"bounced"`
	Opened     int `json:"opened"`
	Skipped    int `json:"skipped"`
	Finished   int `json:"finished"`
	Complaints int `json:"complaints"`
	Blocked    int `json:"blocked"`
}

func (s *DistributionStats) UnmarshalJSON(b []byte) error {
	var w struct {
		Sent       lenientInt `json:"sent"`
		Failed     lenientInt `json:"failed"`
		Started    lenientInt `json:"started"`
		Bounced    lenientInt `json:"bounced"`
		Opened     lenientInt `json:"opened"`
		Skipped    lenientInt `json:"skipped"`
		Finished   lenientInt `json:"finished"`
		Complaints lenientInt `json:"complaints"`
		Blocked    lenientInt `json:"blocked"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = DistributionStats{int(w.Sent), int(w.Failed), int(w.Started), int(w.Bounced), int(w.Opened),
		int(w.Skipped), int(w.Finished), int(w.Complaints), int(w.Blocked)}
	return nil
}

// HistoryStatus is a recipient's state in a distribution's history. Values not
// listed here are kept as they come.
type HistoryStatus string

const (
	StatusPending                 HistoryStatus = "Pending"
	StatusSuccess                 HistoryStatus = "Success"
	StatusError                   HistoryStatus = "Error"
	StatusOpened                  HistoryStatus = "Opened"
	StatusComplaint               HistoryStatus = "Complaint"
	StatusSkipped                 HistoryStatus = "Skipped"
	StatusBlocked                 HistoryStatus = "Blocked"
	StatusFailure                 HistoryStatus = "Failure"
	StatusUnknown                 HistoryStatus = "Unknown"
	StatusSoftBounce              HistoryStatus = "SoftBounce"
	StatusHardBounce              HistoryStatus = "HardBounce"
	StatusSurveyStarted           HistoryStatus = "SurveyStarted"
	StatusSurveyPartiallyFinished HistoryStatus = "SurveyPartiallyFinished"
	StatusSurveyFinished          HistoryStatus = "SurveyFinished"
	StatusSurveyScreenedOut       HistoryStatus = "SurveyScreenedOut"
	StatusSessionExpired          HistoryStatus = "SessionExpired"
)

// HistoryEntry is an element of GET /distributions/{id}/history. It carries no
// email: join it with Link on ContactID.
type HistoryEntry struct {
	ContactID              string        `json:"contactId"`
	ContactLookupID        string        `json:"contactLookupId"`
	DistributionID         string        `json:"distributionId"`
	Status                 HistoryStatus `json:"status"`
	SurveyLink             string        `json:"surveyLink"`
	ContactFrequencyRuleID string        `json:"contactFrequencyRuleId"`
	ResponseID             string        `json:"responseId"`
	ResponseCompletedAt    time.Time     `json:"responseCompletedAt"`
	SentAt                 time.Time     `json:"sentAt"`
	OpenedAt               time.Time     `json:"openedAt"`
	ResponseStartedAt      time.Time     `json:"responseStartedAt"`
	SurveySessionID        string        `json:"surveySessionId"`

	bad *malformedDates // nil unless a date could not be read
}

func (h *HistoryEntry) malformed() *malformedDates { return h.bad }

func (h *HistoryEntry) UnmarshalJSON(b []byte) error {
	type plain HistoryEntry
	var w struct {
		plain
		ResponseCompletedAt lenientTime `json:"responseCompletedAt"`
		SentAt              lenientTime `json:"sentAt"`
		OpenedAt            lenientTime `json:"openedAt"`
		ResponseStartedAt   lenientTime `json:"responseStartedAt"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = HistoryEntry(w.plain)
	h.ResponseCompletedAt, h.SentAt = w.ResponseCompletedAt.Time, w.SentAt.Time
	h.OpenedAt, h.ResponseStartedAt = w.OpenedAt.Time, w.ResponseStartedAt.Time
	h.bad = nil
	noteDate(&h.bad, "responseCompletedAt", w.ResponseCompletedAt)
	noteDate(&h.bad, "sentAt", w.SentAt)
	noteDate(&h.bad, "openedAt", w.OpenedAt)
	noteDate(&h.bad, "responseStartedAt", w.ResponseStartedAt)
	return nil
}

// Link is an element of GET /distributions/{id}/links: the only source of a
// recipient's email. Its Status is the mailer's view ("Email not sent") and
// lags behind history; take the status from HistoryEntry.
type Link struct {
	ContactID                string    `json:"contactId"`
	TransactionID            string    `json:"transactionId"`
	Link                     string    `json:"link"`
	ExceededContactFrequency bool      `json:"exceededContactFrequency"`
	LinkExpiration           time.Time `json:"linkExpiration"`
	Status                   string    `json:"status"`
	FirstName                string    `json:"firstName"`
	LastName                 string    `json:"lastName"`
	ExternalDataReference    string    `json:"externalDataReference"`
	Email                    string    `json:"email"`
	Unsubscribed             bool      `json:"unsubscribed"`

	bad *malformedDates // nil unless a date could not be read
}

func (l *Link) malformed() *malformedDates { return l.bad }

func (l *Link) UnmarshalJSON(b []byte) error {
	type plain Link
	var w struct {
		plain
		ExceededContactFrequency lenientBool   `json:"exceededContactFrequency"`
		LinkExpiration           lenientTime   `json:"linkExpiration"`
		ExternalDataReference    lenientString `json:"externalDataReference"`
		Unsubscribed             lenientBool   `json:"unsubscribed"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*l = Link(w.plain)
	l.ExceededContactFrequency, l.LinkExpiration = bool(w.ExceededContactFrequency), w.LinkExpiration.Time
	l.ExternalDataReference, l.Unsubscribed = string(w.ExternalDataReference), bool(w.Unsubscribed)
	l.bad = nil
	noteDate(&l.bad, "linkExpiration", w.LinkExpiration)
	return nil
}

// EventSubscription is an answer of GET /eventsubscriptions[/{id}].
type EventSubscription struct {
	ID              string `json:"id"`
	Scope           string `json:"scope"`
	Topics          string `json:"topics"`
	PublicationURL  string `json:"publicationUrl"`
	Encrypted       bool   `json:"encrypted"`
	SuccessfulCalls int    `json:"successfulCalls"`
}

func (e *EventSubscription) UnmarshalJSON(b []byte) error {
	type plain EventSubscription
	var w struct {
		plain
		Encrypted       lenientBool `json:"encrypted"`
		SuccessfulCalls lenientInt  `json:"successfulCalls"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = EventSubscription(w.plain)
	e.Encrypted, e.SuccessfulCalls = bool(w.Encrypted), int(w.SuccessfulCalls)
	return nil
}

// NewEventSubscription is the body of POST /eventsubscriptions. SharedKey signs
// the callbacks (HMAC-SHA512 of MSG); it is never logged.
type NewEventSubscription struct {
	PublicationURL string `json:"publicationUrl"`
	Topics         string `json:"topics"`
	Encrypt        bool   `json:"encrypt"`
	SharedKey      string `json:"sharedKey,omitempty"`
}
