package qualtricssim

import (
	"math/rand/v2"
	"time"
)

// Account types returned by whoami.
const (
	AccountBrandAdmin = "UT_BRANDADMIN"
	AccountUser       = "UT_FULLUSER"
)

// Distribution request types (distributions[].requestType).
const (
	RequestInvite    = "Invite"
	RequestReminder  = "Reminder"
	RequestThankYou  = "ThankYou"
	RequestTestEmail = "TestEmail"
	RequestPortal    = "Portal"
)

// History statuses. Unknown and Error are rare in practice but real clients must store them.
const (
	StatusPending                 = "Pending"
	StatusSuccess                 = "Success"
	StatusError                   = "Error"
	StatusOpened                  = "Opened"
	StatusComplaint               = "Complaint"
	StatusSkipped                 = "Skipped"
	StatusBlocked                 = "Blocked"
	StatusFailure                 = "Failure"
	StatusUnknown                 = "Unknown"
	StatusSoftBounce              = "SoftBounce"
	StatusHardBounce              = "HardBounce"
	StatusSurveyStarted           = "SurveyStarted"
	StatusSurveyPartiallyFinished = "SurveyPartiallyFinished"
	StatusSurveyFinished          = "SurveyFinished"
	StatusSurveyScreenedOut       = "SurveyScreenedOut"
	StatusSessionExpired          = "SessionExpired"
)

// AllStatuses lists every history status the generator emits; a brand with at least this many
// invitation recipients contains each of them at least once.
var AllStatuses = []string{
	StatusPending, StatusSuccess, StatusOpened, StatusSurveyStarted, StatusSurveyPartiallyFinished,
	StatusSurveyFinished, StatusSurveyScreenedOut, StatusSoftBounce, StatusHardBounce, StatusFailure,
	StatusBlocked, StatusSkipped, StatusComplaint, StatusSessionExpired, StatusError, StatusUnknown,
}

// Brand is one Qualtrics brand (tenant): its users with their credentials and its data. Generate
// builds one; New copies it, so changing a Brand after New has no effect on the server.
type Brand struct {
	ID             string // brandId in whoami, BrandID in survey definitions and events
	OrganizationID string // organizationId of surveys and distributions; first label of links
	Datacenter     string // e.g. "iad1"
	BaseURL        string // BrandBaseURL of survey definitions, e.g. "https://acme.qualtrics.com"
	LinkHost       string // host of personal survey links, e.g. "acme.iad1.qualtrics.com"
	// NoDirectoryLicence makes distribution history answer 404, as it does for brands without
	// an XM Directory licence.
	NoDirectoryLicence bool
	Users              []User
	OAuthClients       []OAuthClient
	Surveys            []Survey
	Distributions      []Distribution // with their Recipients
}

// User is a Qualtrics user of a brand with its API token(s).
type User struct {
	ID          string // UR_…
	UserName    string
	FirstName   string
	LastName    string
	Email       string
	AccountType string // AccountBrandAdmin or AccountUser
	Tokens      []string
}

// OAuthClient is an OAuth 2.0 client-credentials client acting as one user of a brand.
type OAuthClient struct {
	ClientID     string
	ClientSecret string
	UserID       string
	Scope        string // granted when the token request names no scope
}

// Survey is the ground truth of one survey.
type Survey struct {
	ID               string // SV_…
	Name             string
	OwnerID          string // UR_…
	IsActive         bool
	CreationDate     time.Time // zero for old surveys that lack it on the wire
	LastModifiedDate time.Time
	StartDate        time.Time // expiration.startDate; zero is null
	EndDate          time.Time // expiration.endDate; zero is null
	ResponseCounts   ResponseCounts
}

// ResponseCounts is surveys/{id} responseCounts.
type ResponseCounts struct {
	Auditable int
	Generated int
	Deleted   int
}

// Headers is distributions[].headers.
type Headers struct {
	FromEmail    string
	ReplyToEmail string
	FromName     string
	Subject      string
}

// Stats is distributions[].stats. See ComputeStats for how it follows from recipients.
type Stats struct {
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

// Distribution is the ground truth of one email distribution.
type Distribution struct {
	ID                   string // EMD_…
	SurveyID             string
	ParentDistributionID string // set on reminders and thank-yous: the invite they follow
	OwnerID              string
	RequestType          string
	RequestStatus        string // "Done", or "Pending" for a send scheduled in the future
	SendDate             time.Time
	CreatedDate          time.Time
	ModifiedDate         time.Time
	Headers              Headers
	MailingListID        string    // CG_…
	LinkExpiration       time.Time // surveyLink.expirationDate; zero is null
	Stats                Stats     // computed by the server from Recipients; input is ignored
	// Recipients is filled by Generate and read by AddDistribution; the server's read methods
	// leave it nil (use Server.Recipients) so listing distributions of a big brand stays cheap.
	Recipients []Recipient
}

// Recipient is one row of a distribution: what history and links say about one contact.
type Recipient struct {
	ContactID             string // CID_…: join key between history and links
	ContactLookupID       string // MLRP_…
	Email                 string // as served by links: may carry odd case and spaces
	FirstName             string
	LastName              string
	ExternalDataReference string
	Status                string // history status
	Link                  string // personal survey link
	LinkExpiration        time.Time
	SentAt                time.Time // zero is null
	OpenedAt              time.Time
	ResponseStartedAt     time.Time
	ResponseCompletedAt   time.Time
	ResponseID            string // R_… once started
	SurveySessionID       string // FS_… once started
	Unsubscribed          bool
	// LegacyUnsubscribed serves unsubscribed as the string "0"/"1", as 2019 recordings show.
	LegacyUnsubscribed bool
	// LinkStatus is links[].status, which lags behind history ("Email not sent" while history
	// says SurveyStarted); empty derives it from Status.
	LinkStatus string
}

// ComputeStats derives distribution stats from recipients' history statuses. The mapping (ours:
// Qualtrics documents none) treats the statuses as a funnel so the counters nest:
//
//	sent       = every status after an email left: Success, Opened, Complaint, SoftBounce,
//	             HardBounce, SurveyStarted, SurveyPartiallyFinished, SurveyFinished,
//	             SurveyScreenedOut, SessionExpired
//	opened     = Opened and every survey status (SurveyStarted … SessionExpired)
//	started    = SurveyStarted, SurveyPartiallyFinished, SurveyFinished, SurveyScreenedOut, SessionExpired
//	finished   = SurveyFinished, SurveyScreenedOut (the response is complete either way)
//	bounced    = SoftBounce, HardBounce
//	failed     = Failure, Error
//	skipped    = Skipped; blocked = Blocked; complaints = Complaint
//
// Pending and Unknown count nowhere.
func ComputeStats(recipients []Recipient) Stats {
	var s Stats
	for i := range recipients {
		s.add(recipients[i].Status, 1)
	}
	return s
}

func (s *Stats) add(status string, n int) {
	switch status {
	case StatusSuccess, StatusComplaint:
		s.Sent += n
		if status == StatusComplaint {
			s.Complaints += n
		}
	case StatusSoftBounce, StatusHardBounce:
		s.Sent += n
		s.Bounced += n
	case StatusOpened:
		s.Sent += n
		s.Opened += n
	case StatusSurveyStarted, StatusSurveyPartiallyFinished, StatusSessionExpired:
		s.Sent += n
		s.Opened += n
		s.Started += n
	case StatusSurveyFinished, StatusSurveyScreenedOut:
		s.Sent += n
		s.Opened += n
		s.Started += n
		s.Finished += n
	case StatusFailure, StatusError:
		s.Failed += n
	case StatusSkipped:
		s.Skipped += n
	case StatusBlocked:
		s.Blocked += n
	}
}

// statusRank orders statuses along the funnel so a status change can fill in the timestamps
// the new status implies (an opened email was sent; a started survey was opened).
func statusRank(status string) int {
	switch status {
	case StatusPending, StatusFailure, StatusError, StatusSkipped, StatusBlocked, StatusUnknown:
		return 0
	case StatusSuccess, StatusSoftBounce, StatusHardBounce, StatusComplaint:
		return 1
	case StatusOpened:
		return 2
	case StatusSurveyStarted, StatusSurveyPartiallyFinished, StatusSessionExpired:
		return 3
	case StatusSurveyFinished, StatusSurveyScreenedOut:
		return 4
	}
	return 0
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns prefix followed by 15 alphanumerics, the shape of every Qualtrics id we use.
func newID(r *rand.Rand, prefix string) string {
	b := make([]byte, len(prefix)+15)
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = alnum[r.IntN(len(alnum))]
	}
	return string(b)
}

func randString(r *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}
