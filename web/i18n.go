package web

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// Lang is a page language. Messages are looked up by key; a key missing from
// French falls back to English, and a key missing everywhere shows itself so
// the gap is visible rather than silent.
type Lang string

const (
	LangEN Lang = "en"
	LangFR Lang = "fr"
)

// T returns the message for key, with fmt verbs filled from args. A message
// with plural forms (pluralMessages) takes the form its counts call for.
func (l Lang) T(key string, args ...any) string {
	if m, ok := l.lookup(key, args); ok {
		return m
	}
	if m, ok := LangEN.lookup(key, args); ok {
		return m
	}
	return key
}

// has reports whether l has a message of its own for key, plain or plural.
func (l Lang) Has(key string) bool {
	_, plain := messages[l][key]
	_, counted := pluralMessages[l][key]
	return plain || counted
}

func (l Lang) lookup(key string, args []any) (string, bool) {
	if m, ok := messages[l][key]; ok {
		if len(args) > 0 {
			return fmt.Sprintf(m, args...), true
		}
		return m, true
	}
	if _, ok := pluralMessages[l][key]; ok {
		return pluralPrinters()[l].Sprintf(key, args...), true
	}
	return "", false
}

// pickLang chooses the language: the cookie set by the switch wins, then
// Accept-Language, then English. The header is matched by x/text rather than
// by hand so quality values, "*" and regional variants (fr-CA, en-GB) are
// read the way browsers mean them; a header that does not parse tells us
// nothing, so it gets English like no header at all.
func pickLang(r *http.Request, cookieName string) Lang {
	if c, err := r.Cookie(cookieName); err == nil {
		if l, ok := parseLang(c.Value); ok {
			return l
		}
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil {
		return LangEN
	}
	// With no match the matcher answers its first language, English.
	_, i, _ := langMatcher.Match(tags...)
	return supportedLangs[i]
}

// supportedLangs are the languages with a catalog, English first: it is the
// default when the browser asks for none of them.
var supportedLangs = []Lang{LangEN, LangFR}

var langMatcher = func() language.Matcher {
	tags := make([]language.Tag, len(supportedLangs))
	for i, l := range supportedLangs {
		tags[i] = l.tag()
	}
	return language.NewMatcher(tags)
}()

// tag is l as x/text names it.
func (l Lang) tag() language.Tag { return language.MustParse(string(l)) }

func parseLang(s string) (Lang, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "en":
		return LangEN, true
	case "fr":
		return LangFR, true
	}
	return "", false
}

const langCookie = "microapps_lang"

var messages = map[Lang]map[string]string{
	LangEN: {
		"product":             "microapps",
		"skip":                "Skip to main content",
		"nav.label":           "Main",
		"nav.my":              "My active surveys",
		"nav.admin":           "Open surveys",
		"nav.notifications":   "Notifications",
		"signout":             "Sign out",
		"signedin":            "Signed in as %s",
		"lang.label":          "Language",
		"lang.switch":         "Language",
		"external":            "(opens Qualtrics)",
		"stale":               "%s: data as of %s — Qualtrics could not be reached since.",
		"stale.never":         "%s: Qualtrics could not be reached; data may be incomplete.",
		"my.title":            "My active surveys",
		"my.lead":             "Surveys you still have to answer, the soonest deadline first.",
		"my.empty":            "You have no surveys waiting for you.",
		"my.empty.hint":       "New survey requests appear here as soon as they are sent to you.",
		"col.survey":          "Survey",
		"col.group":           "Functional group",
		"col.ends":            "Ends on",
		"col.status":          "Status",
		"col.details":         "Details",
		"col.responses":       "Responses",
		"col.completion":      "Completion",
		"col.email":           "Email",
		"col.date":            "Last activity",
		"col.sent":            "Sent",
		"col.finished":        "Finished",
		"view.details":        "View details",
		"view.details.of":     "View details of %s",
		"no.end":              "No end date",
		"detail.title":        "Survey details",
		"detail.sent":         "Sent",
		"detail.expires":      "Expires",
		"detail.status":       "Status",
		"detail.sender":       "Sender",
		"detail.group":        "Functional group",
		"detail.respond":      "Respond to survey in Qualtrics",
		"detail.finished":     "You have completed this survey. Thank you!",
		"detail.expired":      "This survey link has expired.",
		"detail.inactive":     "This survey is no longer active.",
		"detail.nolink":       "Your personal link is not available yet. Use the link in the invitation email.",
		"detail.back":         "Back to my active surveys",
		"admin.title":         "Open surveys",
		"admin.lead":          "Active surveys of the integrations you administer.",
		"admin.search":        "Search by survey name",
		"admin.search.button": "Search",
		"admin.empty":         "No active surveys in %s.",
		"admin.empty.search":  "No open survey matches “%s”.",
		"admin.rate":          "%d%% completed",
		"results.title":       "Survey results",
		"results.recorded":    "Recorded responses",
		"results.generated":   "Generated responses",
		"results.deleted":     "Deleted responses",
		"results.sent":        "Invitations sent",
		"results.finished":    "Finished",
		"results.open":        "View results in Qualtrics",
		"results.dists":       "Distributions",
		"results.dists.empty": "This survey has not been distributed yet.",
		"results.dist.label":  "%s sent %s",
		"results.selected":    "Selected",
		"results.select":      "Show recipients",
		"results.recipients":  "Recipients",
		"results.filter":      "Filter by status",
		"results.filter.all":  "All statuses",
		"results.filter.go":   "Filter",
		"results.nobody":      "No recipient matches this filter.",
		"results.data":        "Distribution data",
		"dist.title":          "Distribution data",
		"dist.created":        "Created",
		"dist.sent":           "Sent",
		"dist.expires":        "Link expires",
		"dist.type":           "Type",
		"dist.subject":        "Subject",
		"dist.rate":           "Response rate",
		"dist.review":         "Review distributions in Qualtrics",
		"dist.chart":          "Opened, started and finished over time",
		"dist.chart.empty":    "The chart appears after the figures have been read twice.",
		"dist.survey":         "Survey",
		"stat.sent":           "Sent",
		"stat.opened":         "Opened",
		"stat.started":        "Started",
		"stat.finished":       "Finished",
		"stat.bounced":        "Bounced",
		"stat.failed":         "Failed",
		"stat.skipped":        "Skipped",
		"stat.blocked":        "Blocked",
		"stat.complaints":     "Complaints",
		"feed.title":          "Notifications",
		"feed.empty":          "You have no notifications.",
		"feed.unread":         "Unread",
		"feed.markread":       "Mark as read",
		"feed.markall":        "Mark all as read",
		"pager.label":         "Pages",
		"pager.prev":          "Previous",
		"pager.next":          "Next",
		"pager.of":            "Page %d of %d",
		"badinput.title":      "Address not understood",
		"badinput.body":       "The address holds characters this site never uses. Check the link, or go back to the home page.",
		"notfound.title":      "Page not found",
		"notfound.body":       "If you typed the web address, check it is correct. If you followed a link, the item may no longer exist or may not be shared with you.",
		"unauth.title":        "Sign-in required",
		"unauth.body":         "We could not tell who you are. Open this service through your company's sign-in.",
		"error.title":         "Sorry, there is a problem",
		"error.body":          "Something went wrong on our side. Try again in a few minutes.",
		"error.ref":           "Reference: %s",
		"forbidden.title":     "Request refused",
		"forbidden.body":      "This request came from another site and was refused.",
		"signin.title":        "Sign in",
		"signin.lead":         "Choose a demo user.",
		"signin.as":           "Sign in as %s",
		"signin.failed":       "Sign-in failed",
		"signin.failed.body":  "Sign-in could not be completed. Try again, or contact your administrator.",
		"signin.again":        "Try again",

		// Why an OpenID sign-in was refused, as far as the user can act on it.
		"signin.failed.noemail":    "Your identity provider did not share an email address with this service. Contact your administrator.",
		"signin.failed.unverified": "Your identity provider has not verified your email address. Verify it there, then try again.",

		"signedout.title":     "You are signed out",
		"rel.now":             "now",
		"status.not_started":  "Not started",
		"status.opened":       "Opened",
		"status.in_progress":  "In progress",
		"status.partial":      "Partially finished",
		"status.finished":     "Finished",
		"status.screened_out": "Screened out",
		"status.bounced":      "Bounced",
		"status.failed":       "Not delivered",
		"status.expired":      "Expired",
		"status.unknown":      "Unknown",
		"type.Invite":         "Invitation",
		"type.Reminder":       "Reminder",
		"type.ThankYou":       "Thank you",
	},
	LangFR: {
		"product":             "microapps",
		"skip":                "Aller au contenu principal",
		"nav.label":           "Principale",
		"nav.my":              "Mes enquêtes actives",
		"nav.admin":           "Enquêtes ouvertes",
		"nav.notifications":   "Notifications",
		"signout":             "Se déconnecter",
		"signedin":            "Connecté en tant que %s",
		"lang.label":          "Langue",
		"lang.switch":         "Langue",
		"external":            "(ouvre Qualtrics)",
		"stale":               "%s : données du %s — Qualtrics est injoignable depuis.",
		"stale.never":         "%s : Qualtrics est injoignable ; les données peuvent être incomplètes.",
		"my.title":            "Mes enquêtes actives",
		"my.lead":             "Les enquêtes auxquelles vous devez encore répondre, la plus urgente d’abord.",
		"my.empty":            "Aucune enquête ne vous attend.",
		"my.empty.hint":       "Les nouvelles demandes apparaissent ici dès qu’elles vous sont envoyées.",
		"col.survey":          "Enquête",
		"col.group":           "Groupe fonctionnel",
		"col.ends":            "Se termine le",
		"col.status":          "Statut",
		"col.details":         "Détails",
		"col.responses":       "Réponses",
		"col.completion":      "Achèvement",
		"col.email":           "E-mail",
		"col.date":            "Dernière activité",
		"col.sent":            "Envoyés",
		"col.finished":        "Terminés",
		"view.details":        "Voir les détails",
		"view.details.of":     "Voir les détails de %s",
		"no.end":              "Sans date de fin",
		"detail.title":        "Détails de l’enquête",
		"detail.sent":         "Envoyée",
		"detail.expires":      "Expire",
		"detail.status":       "Statut",
		"detail.sender":       "Expéditeur",
		"detail.group":        "Groupe fonctionnel",
		"detail.respond":      "Répondre à l’enquête dans Qualtrics",
		"detail.finished":     "Vous avez terminé cette enquête. Merci !",
		"detail.expired":      "Le lien de cette enquête a expiré.",
		"detail.inactive":     "Cette enquête n’est plus active.",
		"detail.nolink":       "Votre lien personnel n’est pas encore disponible. Utilisez le lien de l’e-mail d’invitation.",
		"detail.back":         "Retour à mes enquêtes actives",
		"admin.title":         "Enquêtes ouvertes",
		"admin.lead":          "Les enquêtes actives des intégrations que vous administrez.",
		"admin.search":        "Rechercher par nom d’enquête",
		"admin.search.button": "Rechercher",
		"admin.empty":         "Aucune enquête active dans %s.",
		"admin.empty.search":  "Aucune enquête ouverte ne correspond à « %s ».",
		"admin.rate":          "%d %% terminé",
		"results.title":       "Résultats de l’enquête",
		"results.recorded":    "Réponses enregistrées",
		"results.generated":   "Réponses générées",
		"results.deleted":     "Réponses supprimées",
		"results.sent":        "Invitations envoyées",
		"results.finished":    "Terminées",
		"results.open":        "Voir les résultats dans Qualtrics",
		"results.dists":       "Distributions",
		"results.dists.empty": "Cette enquête n’a pas encore été distribuée.",
		"results.dist.label":  "%s envoyée le %s",
		"results.selected":    "Sélectionnée",
		"results.select":      "Voir les destinataires",
		"results.recipients":  "Destinataires",
		"results.filter":      "Filtrer par statut",
		"results.filter.all":  "Tous les statuts",
		"results.filter.go":   "Filtrer",
		"results.nobody":      "Aucun destinataire ne correspond à ce filtre.",
		"results.data":        "Données de distribution",
		"dist.title":          "Données de distribution",
		"dist.created":        "Créée",
		"dist.sent":           "Envoyée",
		"dist.expires":        "Le lien expire",
		"dist.type":           "Type",
		"dist.subject":        "Objet",
		"dist.rate":           "Taux de réponse",
		"dist.review":         "Examiner les distributions dans Qualtrics",
		"dist.chart":          "Ouvertes, commencées et terminées dans le temps",
		"dist.chart.empty":    "Le graphique apparaît une fois les chiffres lus deux fois.",
		"dist.survey":         "Enquête",
		"stat.sent":           "Envoyés",
		"stat.opened":         "Ouverts",
		"stat.started":        "Commencés",
		"stat.finished":       "Terminés",
		"stat.bounced":        "Rejetés",
		"stat.failed":         "Échecs",
		"stat.skipped":        "Ignorés",
		"stat.blocked":        "Bloqués",
		"stat.complaints":     "Plaintes",
		"feed.title":          "Notifications",
		"feed.empty":          "Vous n’avez aucune notification.",
		"feed.unread":         "Non lue",
		"feed.markread":       "Marquer comme lue",
		"feed.markall":        "Tout marquer comme lu",
		"pager.label":         "Pages",
		"pager.prev":          "Précédente",
		"pager.next":          "Suivante",
		"pager.of":            "Page %d sur %d",
		"badinput.title":      "Adresse incomprise",
		"badinput.body":       "L’adresse contient des caractères que ce site n’utilise jamais. Vérifiez le lien, ou revenez à l’accueil.",
		"notfound.title":      "Page introuvable",
		"notfound.body":       "Si vous avez saisi l’adresse, vérifiez-la. Si vous avez suivi un lien, l’élément n’existe peut-être plus ou ne vous est pas partagé.",
		"unauth.title":        "Connexion requise",
		"unauth.body":         "Nous n’avons pas pu vous identifier. Ouvrez ce service via la connexion de votre entreprise.",
		"error.title":         "Désolé, un problème est survenu",
		"error.body":          "Une erreur s’est produite de notre côté. Réessayez dans quelques minutes.",
		"error.ref":           "Référence : %s",
		"forbidden.title":     "Requête refusée",
		"forbidden.body":      "Cette requête venait d’un autre site et a été refusée.",
		"signin.title":        "Connexion",
		"signin.lead":         "Choisissez un utilisateur de démonstration.",
		"signin.as":           "Se connecter en tant que %s",
		"signin.failed":       "Échec de la connexion",
		"signin.failed.body":  "La connexion n’a pas abouti. Réessayez ou contactez votre administrateur.",
		"signin.again":        "Réessayer",

		"signin.failed.noemail":    "Votre fournisseur d’identité n’a pas communiqué d’adresse e-mail à ce service. Contactez votre administrateur.",
		"signin.failed.unverified": "Votre fournisseur d’identité n’a pas vérifié votre adresse e-mail. Vérifiez-la chez lui, puis réessayez.",

		"signedout.title":     "Vous êtes déconnecté",
		"rel.now":             "maintenant",
		"status.not_started":  "Pas commencée",
		"status.opened":       "Ouverte",
		"status.in_progress":  "En cours",
		"status.partial":      "Partiellement terminée",
		"status.finished":     "Terminée",
		"status.screened_out": "Exclue",
		"status.bounced":      "Rejetée",
		"status.failed":       "Non distribuée",
		"status.expired":      "Expirée",
		"status.unknown":      "Inconnu",
		"type.Invite":         "Invitation",
		"type.Reminder":       "Rappel",
		"type.ThankYou":       "Remerciement",
	},
}

// pluralMessages are the messages that take a count, per language; a key
// is either here or in messages, in every language. Forms over several
// arguments are format strings over all of them, in order.
var pluralMessages = map[Lang]map[string]PluralMessage{
	LangEN: {
		"nav.unread":         Forms(1, "%d unread", "%d unread"),
		"results.completion": Forms(1, "%d of %d finished (%d%%)", "%d of %d finished (%d%%)"),
		"rel.in.min":         Forms(1, "in %d minute", "in %d minutes"),
		"rel.in.hour":        Forms(1, "in %d hour", "in %d hours"),
		"rel.in.day":         Forms(1, "in %d day", "in %d days"),
		"rel.ago.min":        Forms(1, "%d minute ago", "%d minutes ago"),
		"rel.ago.hour":       Forms(1, "%d hour ago", "%d hours ago"),
		"rel.ago.day":        Forms(1, "%d day ago", "%d days ago"),
	},
	LangFR: {
		"nav.unread": Forms(1, "%d non lue", "%d non lues"),
		// The finished ones agree with their own count: "1 sur 10 terminé".
		"results.completion": Forms(1, "%d sur %d terminé (%d %%)", "%d sur %d terminés (%d %%)"),
		"rel.in.min":         Forms(1, "dans %d minute", "dans %d minutes"),
		"rel.in.hour":        Forms(1, "dans %d heure", "dans %d heures"),
		"rel.in.day":         Forms(1, "dans %d jour", "dans %d jours"),
		"rel.ago.min":        Forms(1, "il y a %d minute", "il y a %d minutes"),
		"rel.ago.hour":       Forms(1, "il y a %d heure", "il y a %d heures"),
		"rel.ago.day":        Forms(1, "il y a %d jour", "il y a %d jours"),
	},
}
