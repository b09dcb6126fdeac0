package qualtricssim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Spec sizes and shapes a generated brand. Zero fields take the defaults documented on each.
type Spec struct {
	BrandID        string // default "sim" + 6 random letters
	OrganizationID string // default BrandID
	Datacenter     string // default "iad1"
	LinkHost       string // default "{org}.{dc}.qualtrics.com"
	Surveys        int    // default 5
	// Recipients is the number of invitation and reminder rows over all distributions; test
	// sends and thank-yous add a few more. Default 50 per survey.
	Recipients int
	// Emails are people who must appear as recipients (the demo's alice@example.com): each is
	// put in about half of the invitations, so they show up across surveys and brands.
	Emails []string
	// PoolSize is how many generated people recipients are drawn from; default Recipients/4,
	// at least the largest invitation, so people recur across distributions.
	PoolSize int
	// Now anchors every date (sends, expirations past / within 24 h / far). Zero means
	// time.Now(); set it for output that is the same on every run.
	Now time.Time
}

type person struct {
	contactID string
	first     string
	last      string
	email     string
	extRef    string
}

var firstNames = []string{
	"Zoë", "François", "Søren", "Amélie", "José", "Björn", "Chloé", "Jürgen", "Inès", "Łukasz",
	"Anna", "Mark", "Priya", "Wei", "Fatima", "Olivia", "Liam", "Noah", "Emma", "Mateo",
	"Hélène", "Dvořák", "Ágnes", "Renée", "Zoltán", "Maëlle", "Yusuf", "Kenji", "Ngozi", "Siobhán",
}

var lastNames = []string{
	"Müller", "Ødegaard", "García", "Núñez", "Dubois", "Kowalski", "Smith", "Johnson", "Lefèvre",
	"Schröder", "Åström", "Brontë", "O'Connor", "Nguyễn", "Tanaka", "Okafor", "Rossi", "Fernández",
	"Černý", "Weiß", "Jensen", "Patel", "Kim", "da Silva", "Van der Berg", "Łukaszewicz",
}

var surveyThemes = []string{
	"Quarterly pulse", "Onboarding feedback", "IT service desk satisfaction", "Benefits enrolment",
	"Customer success check-in", "Office move survey", "Training evaluation", "Manager effectiveness",
	"Product beta feedback", "Annual engagement", "Security awareness quiz", "Café & canteen",
}

var emailDomains = []string{"example.com", "example.org", "corp.example", "mail.example.net"}

// statusWeights is how often each status shows up in a sent invitation, in permille.
var statusWeights = []struct {
	status string
	weight int
}{
	{StatusPending, 20}, {StatusSuccess, 180}, {StatusOpened, 140}, {StatusSurveyStarted, 80},
	{StatusSurveyPartiallyFinished, 50}, {StatusSurveyFinished, 300}, {StatusSurveyScreenedOut, 20},
	{StatusSoftBounce, 20}, {StatusHardBounce, 20}, {StatusFailure, 10}, {StatusBlocked, 10},
	{StatusSkipped, 10}, {StatusComplaint, 10}, {StatusSessionExpired, 30}, {StatusError, 5},
	{StatusUnknown, 5},
}

type generator struct {
	r       *rand.Rand
	spec    Spec
	now     time.Time
	brand   *Brand
	people  []person
	named   int // people[:named] are Spec.Emails
	covered int // how many of AllStatuses have been forced so far
}

// Generate builds a brand deterministically from seed and spec: the same inputs give the same
// brand, ids included. It is linear in the number of recipients.
func Generate(seed int64, spec Spec) *Brand {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	if spec.Now.IsZero() {
		spec.Now = time.Now()
	}
	spec.Now = spec.Now.UTC().Truncate(time.Second)
	if spec.BrandID == "" {
		spec.BrandID = "sim" + randString(r, 6, alnum[:26])
	}
	if spec.OrganizationID == "" {
		spec.OrganizationID = spec.BrandID
	}
	if spec.Datacenter == "" {
		spec.Datacenter = "iad1"
	}
	if spec.LinkHost == "" {
		spec.LinkHost = spec.OrganizationID + "." + spec.Datacenter + ".qualtrics.com"
	}
	if spec.Surveys <= 0 {
		spec.Surveys = 5
	}
	if spec.Recipients <= 0 {
		spec.Recipients = 50 * spec.Surveys
	}
	g := &generator{r: r, spec: spec, now: spec.Now}
	g.brand = &Brand{
		ID:             spec.BrandID,
		OrganizationID: spec.OrganizationID,
		Datacenter:     spec.Datacenter,
		BaseURL:        "https://" + spec.OrganizationID + ".qualtrics.com",
		LinkHost:       spec.LinkHost,
	}
	g.users()
	g.surveys()
	return g.brand
}

func (g *generator) users() {
	org := g.spec.OrganizationID
	admin := User{
		ID: newID(g.r, "UR_"), UserName: "admin#" + org, FirstName: "Brigitte", LastName: "Admin-Lévesque",
		Email: "brand.admin@" + org + ".example", AccountType: AccountBrandAdmin,
		Tokens: []string{randString(g.r, 40, alnum)},
	}
	user := User{
		ID: newID(g.r, "UR_"), UserName: "analyst#" + org, FirstName: "Ünal", LastName: "Analyst",
		Email: "analyst@" + org + ".example", AccountType: AccountUser,
		Tokens: []string{randString(g.r, 40, alnum)},
	}
	g.brand.Users = []User{admin, user}
	g.brand.OAuthClients = []OAuthClient{{
		ClientID:     randString(g.r, 32, "0123456789abcdef"),
		ClientSecret: randString(g.r, 48, alnum),
		UserID:       admin.ID,
		Scope:        "manage:all",
	}}
}

// plan is one invitation with what follows it, sized before people are drawn so the total
// number of rows matches Spec.Recipients.
type plan struct {
	survey    int
	reminders int
	thankYou  bool
	weight    float64
	size      int
}

func (g *generator) surveys() {
	r := g.r
	var plans []plan
	testSend := make([]bool, g.spec.Surveys)
	for i := 0; i < g.spec.Surveys; i++ {
		g.brand.Surveys = append(g.brand.Surveys, g.survey(i))
		invites := 1 + r.IntN(2)
		for range invites {
			plans = append(plans, plan{survey: i, reminders: r.IntN(3), thankYou: r.IntN(5) == 0, weight: 0.5 + r.Float64()})
		}
		testSend[i] = r.IntN(4) == 0
	}
	var total float64
	for _, p := range plans {
		total += p.weight * float64(1+p.reminders)
	}
	maxSize := 1
	for i := range plans {
		plans[i].size = max(1, int(math.Round(float64(g.spec.Recipients)*plans[i].weight/total)))
		maxSize = max(maxSize, plans[i].size)
	}
	g.makePeople(maxSize)

	next := 0
	for i := range g.brand.Surveys {
		sv := &g.brand.Surveys[i]
		if testSend[i] {
			g.testEmail(sv)
		}
		for ; next < len(plans) && plans[next].survey == i; next++ {
			g.invite(sv, plans[next])
		}
	}
	index := make(map[string]int, len(g.brand.Surveys))
	for i, sv := range g.brand.Surveys {
		index[sv.ID] = i
	}
	for i := range g.brand.Distributions {
		d := &g.brand.Distributions[i]
		d.Stats = ComputeStats(d.Recipients)
		if d.RequestType == RequestInvite {
			g.brand.Surveys[index[d.SurveyID]].ResponseCounts.Auditable += d.Stats.Finished
		}
	}
}

func (g *generator) survey(i int) Survey {
	r := g.r
	owner := g.brand.Users[0].ID
	if i%4 == 3 {
		owner = g.brand.Users[1].ID
	}
	created := g.now.Add(-time.Duration(30+r.IntN(700)) * 24 * time.Hour).Add(-time.Duration(r.IntN(86400)) * time.Second)
	sv := Survey{
		ID:               newID(r, "SV_"),
		Name:             surveyThemes[i%len(surveyThemes)] + " " + strconv.Itoa(2024+i/len(surveyThemes)%3) + " #" + strconv.Itoa(i+1),
		OwnerID:          owner,
		IsActive:         r.IntN(5) != 0,
		CreationDate:     created,
		LastModifiedDate: created.Add(time.Duration(r.Int64N(int64(g.now.Sub(created))))),
		ResponseCounts:   ResponseCounts{Generated: r.IntN(5), Deleted: r.IntN(3)},
	}
	if r.IntN(20) == 0 {
		sv.CreationDate = time.Time{} // old surveys come without creationDate
	}
	switch k := r.IntN(20); {
	case k < 4:
		sv.EndDate = g.now.Add(-time.Duration(1+r.IntN(60)) * 24 * time.Hour)
	case k < 7:
		sv.EndDate = g.now.Add(time.Duration(1+r.IntN(23)) * time.Hour)
	case k < 17:
		sv.EndDate = g.now.Add(time.Duration(20+r.IntN(200)) * 24 * time.Hour)
	}
	if !sv.EndDate.IsZero() {
		sv.StartDate = created.Add(time.Hour)
	}
	return sv
}

func (g *generator) makePeople(maxGroup int) {
	n := g.spec.PoolSize
	if n <= 0 {
		n = g.spec.Recipients / 4
	}
	n = max(n, maxGroup, 20)
	g.named = len(g.spec.Emails)
	g.people = make([]person, 0, g.named+n)
	for _, e := range g.spec.Emails {
		first, last := namesFromEmail(e)
		g.people = append(g.people, person{contactID: newID(g.r, "CID_"), first: first, last: last, email: e})
	}
	for i := range n {
		first := firstNames[g.r.IntN(len(firstNames))]
		last := lastNames[g.r.IntN(len(lastNames))]
		email := asciiFold(first) + "." + asciiFold(last) + strconv.Itoa(i) + "@" + emailDomains[g.r.IntN(len(emailDomains))]
		g.people = append(g.people, person{
			contactID: newID(g.r, "CID_"), first: first, last: last, email: email, extRef: strconv.Itoa(1000 + i),
		})
	}
}

// group draws size distinct people: named people each with even odds, the rest by walking the
// generated pool with a stride coprime to its length, which is distinct without a shuffle.
func (g *generator) group(size int) []*person {
	out := make([]*person, 0, size)
	for i := 0; i < g.named && len(out) < size; i++ {
		if g.r.IntN(2) == 0 {
			out = append(out, &g.people[i])
		}
	}
	pool := g.people[g.named:]
	n := len(pool)
	start, step := g.r.IntN(n), 1+g.r.IntN(n)
	for gcd(step, n) != 1 {
		step++
	}
	for i := 0; len(out) < size; i++ {
		out = append(out, &pool[(start+i*step)%n])
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (g *generator) distribution(sv *Survey, typ string, send time.Time, parent string) Distribution {
	owner := g.brand.Users[0]
	d := Distribution{
		ID:                   newID(g.r, "EMD_"),
		SurveyID:             sv.ID,
		ParentDistributionID: parent,
		OwnerID:              owner.ID,
		RequestType:          typ,
		RequestStatus:        "Done",
		SendDate:             send,
		CreatedDate:          send.Add(-time.Duration(1+g.r.IntN(120)) * time.Minute),
		ModifiedDate:         send,
		Headers: Headers{
			FromEmail: "noreply@qemailserver.com", ReplyToEmail: owner.Email,
			FromName: g.spec.OrganizationID + " surveys", Subject: subject(typ, sv.Name),
		},
		MailingListID: newID(g.r, "CG_"),
	}
	if send.After(g.now) {
		d.RequestStatus = "Pending"
	}
	return d
}

func subject(typ, name string) string {
	switch typ {
	case RequestReminder:
		return "Reminder: " + name
	case RequestThankYou:
		return "Thank you for taking " + name
	case RequestTestEmail:
		return "[TEST] " + name
	}
	return "We'd love your feedback: " + name
}

func (g *generator) invite(sv *Survey, p plan) {
	r := g.r
	var exp, send time.Time
	switch k := r.IntN(10); {
	case k < 2:
		exp = g.now.Add(-time.Duration(1+r.IntN(20*24)) * time.Hour)
	case k < 4:
		exp = g.now.Add(time.Duration(1+r.IntN(23))*time.Hour + time.Duration(r.IntN(3600))*time.Second)
	default:
		exp = g.now.Add(time.Duration(20+r.IntN(100)) * 24 * time.Hour)
	}
	send = g.now.Add(-time.Duration(1+r.IntN(45*24)) * time.Hour)
	if !send.Before(exp) {
		send = exp.Add(-time.Duration(5+r.IntN(25)) * 24 * time.Hour)
	}
	inv := g.distribution(sv, RequestInvite, send, "")
	inv.LinkExpiration = exp
	legacy := r.IntN(4) == 0
	people := g.group(p.size)
	inv.Recipients = make([]Recipient, len(people))
	for i, pp := range people {
		rc := &inv.Recipients[i]
		*rc = Recipient{
			ContactID:             pp.contactID,
			ContactLookupID:       newID(r, "MLRP_"),
			Email:                 g.messyEmail(pp.email),
			FirstName:             pp.first,
			LastName:              pp.last,
			ExternalDataReference: pp.extRef,
			LinkExpiration:        exp,
			LegacyUnsubscribed:    legacy,
			Unsubscribed:          r.IntN(100) == 0,
		}
		rc.Link = personalLink(g.brand.LinkHost, sv.ID, inv.ID, rc.ContactLookupID)
		status := g.drawStatus()
		if g.covered < len(AllStatuses) {
			status = AllStatuses[g.covered]
			g.covered++
		}
		g.setStatus(rc, status, send)
	}
	inv.ModifiedDate = latest(inv.Recipients, send)
	g.brand.Distributions = append(g.brand.Distributions, inv)

	at := send
	for range p.reminders {
		at = at.Add(time.Duration(3+r.IntN(5)) * 24 * time.Hour)
		rem := g.distribution(sv, RequestReminder, at, inv.ID)
		rem.LinkExpiration = exp
		rem.Recipients = make([]Recipient, len(inv.Recipients))
		for i := range inv.Recipients {
			rc := inv.Recipients[i]
			rc.SentAt, rc.OpenedAt, rc.ResponseStartedAt, rc.ResponseCompletedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			rc.ResponseID, rc.SurveySessionID, rc.LinkStatus = "", "", ""
			status := g.drawStatus()
			if statusRank(inv.Recipients[i].Status) == 4 {
				status = StatusSkipped // reminders are not sent to people who already answered
			}
			if rem.RequestStatus == "Pending" {
				status = StatusPending
			}
			g.setStatus(&rc, status, at)
			rem.Recipients[i] = rc
		}
		rem.ModifiedDate = latest(rem.Recipients, at)
		g.brand.Distributions = append(g.brand.Distributions, rem)
	}
	if p.thankYou {
		at := send.Add(time.Duration(1+r.IntN(48)) * time.Hour)
		ty := g.distribution(sv, RequestThankYou, at, inv.ID)
		for _, rc := range inv.Recipients {
			if statusRank(rc.Status) == 4 && rc.ResponseCompletedAt.Before(at) {
				rc.OpenedAt, rc.ResponseStartedAt, rc.ResponseCompletedAt = time.Time{}, time.Time{}, time.Time{}
				rc.ResponseID, rc.SurveySessionID, rc.LinkStatus = "", "", ""
				g.setStatus(&rc, []string{StatusSuccess, StatusOpened}[r.IntN(2)], at)
				ty.Recipients = append(ty.Recipients, rc)
			}
		}
		if ty.RequestStatus == "Done" {
			g.brand.Distributions = append(g.brand.Distributions, ty)
		}
	}
}

// testEmail is a send to the survey's owner and one colleague before the real invitations;
// history refuses these with CP_TD_GER_NP, which clients must survive.
func (g *generator) testEmail(sv *Survey) {
	send := g.now.Add(-time.Duration(46*24+g.r.IntN(10*24)) * time.Hour)
	d := g.distribution(sv, RequestTestEmail, send, "")
	d.LinkExpiration = send.Add(7 * 24 * time.Hour)
	owner := g.brand.Users[0]
	people := []person{{contactID: newID(g.r, "CID_"), first: owner.FirstName, last: owner.LastName, email: owner.Email}}
	if g.r.IntN(2) == 0 {
		people = append(people, g.people[g.r.IntN(len(g.people))])
	}
	for _, pp := range people {
		rc := Recipient{
			ContactID: pp.contactID, ContactLookupID: newID(g.r, "MLRP_"), Email: pp.email,
			FirstName: pp.first, LastName: pp.last, LinkExpiration: d.LinkExpiration,
		}
		rc.Link = personalLink(g.brand.LinkHost, sv.ID, d.ID, rc.ContactLookupID)
		g.setStatus(&rc, StatusSuccess, send)
		d.Recipients = append(d.Recipients, rc)
	}
	g.brand.Distributions = append(g.brand.Distributions, d)
}

func (g *generator) drawStatus() string {
	n := g.r.IntN(1000)
	for _, w := range statusWeights {
		if n < w.weight {
			return w.status
		}
		n -= w.weight
	}
	return StatusSuccess
}

// messyEmail returns the address as some imports leave it: odd case or stray spaces, now and then.
func (g *generator) messyEmail(e string) string {
	switch g.r.IntN(40) {
	case 0:
		return strings.ToUpper(e[:1]) + e[1:]
	case 1:
		return strings.ToUpper(e)
	case 2:
		return " " + e
	case 3:
		return e + "  "
	}
	return e
}

// setStatus sets status and the timestamps it implies, starting from send and never after now.
func (g *generator) setStatus(rc *Recipient, status string, send time.Time) {
	r := g.r
	ms := func() time.Duration { return time.Duration(r.IntN(1000)) * time.Millisecond }
	rc.Status = status
	rank := statusRank(status)
	if rank >= 1 {
		rc.SentAt = g.clamp(send.Add(time.Duration(r.IntN(600))*time.Second + ms()))
	}
	if rank >= 2 || status == StatusComplaint {
		rc.OpenedAt = g.clamp(rc.SentAt.Add(time.Duration(60+r.IntN(2*86400)) * time.Second))
	}
	if rank >= 3 {
		rc.ResponseStartedAt = g.clamp(rc.OpenedAt.Add(time.Duration(5+r.IntN(120)) * time.Second))
		rc.SurveySessionID = newID(r, "FS_")
	}
	if rank == 4 || status == StatusSurveyPartiallyFinished {
		rc.ResponseID = newID(r, "R_")
	}
	if rank == 4 {
		rc.ResponseCompletedAt = g.clamp(rc.ResponseStartedAt.Add(time.Duration(60+r.IntN(1800))*time.Second + ms()))
	}
	if rank >= 1 && r.IntN(4) == 0 {
		rc.LinkStatus = "Email not sent" // links lag behind history; clients must trust history
	}
}

func (g *generator) clamp(t time.Time) time.Time {
	if t.After(g.now) {
		return g.now
	}
	return t
}

func latest(rs []Recipient, t time.Time) time.Time {
	for i := range rs {
		for _, x := range []time.Time{rs[i].SentAt, rs[i].OpenedAt, rs[i].ResponseStartedAt, rs[i].ResponseCompletedAt} {
			if x.After(t) {
				t = x
			}
		}
	}
	return t
}

// personalLink has the shape of real personal links: the invitation id, the survey id without
// its prefix and the mailing-list member id. Reminders reuse the invitation's link.
func personalLink(host, surveyID, distributionID, lookupID string) string {
	return "https://" + host + "/jfe/form/" + surveyID + "?Q_CHL=email&Q_DL=" +
		distributionID + "_" + strings.TrimPrefix(surveyID, "SV_") + "_" + lookupID
}

func namesFromEmail(e string) (string, string) {
	local, _, _ := strings.Cut(strings.TrimSpace(e), "@")
	first, last, _ := strings.Cut(local, ".")
	return title(first), title(last)
}

func title(s string) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

var fold = strings.NewReplacer(
	"ë", "e", "é", "e", "è", "e", "ê", "e", "ç", "c", "ø", "o", "Ø", "o", "ö", "o", "ó", "o", "ü", "u",
	"ú", "u", "ß", "ss", "å", "a", "Å", "a", "á", "a", "Á", "a", "ä", "a", "ł", "l", "Ł", "l", "ñ", "n",
	"ř", "r", "č", "c", "Č", "c", "í", "i", "ễ", "e", "ô", "o", "ý", "y", "ş", "s", " ", "", "'", "",
)

func asciiFold(s string) string {
	return strings.ToLower(fold.Replace(s))
}
