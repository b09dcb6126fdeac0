package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/internal/words"
	"github.com/microapps/microapps/store"
)

// SettingsStore keeps users' notification settings. *store.Store has it; a
// Store without it has no settings pages and remembers nothing.
type SettingsStore interface {
	GetUserSettings(ctx context.Context, email string) (store.UserSettings, error)
	RememberUserLocale(ctx context.Context, email, language, timeZone string, now time.Time) error
	SetEmailOff(ctx context.Context, email string, off bool, now time.Time) error
	UnsubscribeEmail(ctx context.Context, token string, now time.Time) (string, error)
	EmailOfToken(ctx context.Context, token string, now time.Time) (string, error)
}

func (s *Server) settingsStore() (SettingsStore, bool) {
	ss, ok := s.opts.Store.(SettingsStore)
	return ss, ok
}

// locales remembers what was last stored per user, so a page view writes
// only when the user's language or zone changed.
type locales struct{ m sync.Map }

// rememberLocale stores the language and zone the user's browser uses, for
// their emails and chat messages. The zone is stored only when the browser
// reported one.
func (s *Server) rememberLocale(r *http.Request, rc *Request) {
	ss, ok := s.settingsStore()
	if !ok || rc.Email == "" {
		return
	}
	// Only what the browser said: a request with neither a language (cookie
	// or Accept-Language) nor a zone cookie tells nothing worth a write.
	lang := ""
	if _, err := r.Cookie(langCookie); err == nil || r.Header.Get("Accept-Language") != "" {
		lang = string(rc.Lang)
	}
	zone := ""
	if _, err := r.Cookie(tzCookie); err == nil && rc.Loc != time.UTC {
		zone = rc.Loc.String()
	}
	if lang == "" && zone == "" {
		return
	}
	key := lang + "|" + zone
	if last, ok := s.locales.m.Load(rc.Email); ok && last == key {
		return
	}
	if err := ss.RememberUserLocale(r.Context(), rc.Email, lang, zone, rc.Now); err != nil {
		s.log.Warn("remember user locale", zap.Error(err))
		return
	}
	s.locales.m.Store(rc.Email, key)
}

// EmailSettingsVM is the notification settings page.
type EmailSettingsVM struct {
	EmailOff bool
	Saved    bool
}

func (s *Server) emailSettings(w http.ResponseWriter, r *http.Request, rc *Request) error {
	ss, ok := rc.Read.(SettingsStore)
	if !ok {
		return ErrNotFound
	}
	u, err := ss.GetUserSettings(r.Context(), rc.Email)
	if err != nil {
		return err
	}
	l := s.Layout(rc, rc.Lang.T("settings.title"))
	l.Nav = "notifications"
	s.Render(w, r, emailSettingsPage(l, EmailSettingsVM{EmailOff: u.EmailOff, Saved: r.URL.Query().Get("saved") == "1"}))
	return nil
}

func (s *Server) saveEmailSettings(w http.ResponseWriter, r *http.Request, rc *Request) error {
	ss, ok := s.settingsStore()
	if !ok {
		return ErrNotFound
	}
	var off bool
	switch r.PostFormValue("email") {
	case "on":
	case "off":
		off = true
	default:
		http.Error(w, "email must be on or off", http.StatusBadRequest)
		return nil
	}
	if err := ss.SetEmailOff(r.Context(), rc.Email, off, rc.Now); err != nil {
		return err
	}
	http.Redirect(w, r, links.EmailSettings+"?saved=1", http.StatusSeeOther)
	return nil
}

// unsubscribe is the one-click address of List-Unsubscribe (RFC 8058): a
// GET (a person, or a link scanner) only shows a confirmation button; a POST
// turns the token's user's email notifications off, with no sign-in and
// whatever its origin, since the token is the credential.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	rc := s.NewRequest(r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	ss, ok := s.settingsStore()
	token := r.PathValue("token")
	if !ok || token == "" || len(token) > 128 {
		s.renderNotFound(w, r, rc)
		return
	}
	var email string
	var err error
	if r.Method == http.MethodPost {
		email, err = ss.UnsubscribeEmail(r.Context(), token, rc.Now)
	} else {
		email, err = ss.EmailOfToken(r.Context(), token, rc.Now)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.renderNotFound(w, r, rc)
		return
	case err != nil:
		s.serverError(w, r, err)
		return
	}
	done := r.Method == http.MethodPost
	s.Render(w, r, unsubscribePage(s.Layout(rc, rc.Lang.T("unsub.title")), email, r.URL.Path, done))
}

func init() {
	for lang, m := range settingsMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
	// French typography on every page, as in emails: no-break spaces before
	// ":", ";", "?", "!", "%" and inside « ».
	for k, v := range messages[LangFR] {
		messages[LangFR][k] = words.French(v)
	}
}

// settingsMessages are the words of the settings and unsubscribe pages.
var settingsMessages = map[Lang]map[string]string{
	LangEN: {
		"settings.title":  "Email notifications",
		"settings.lead":   "Choose whether we email you about new surveys, surveys about to expire and survey statistics. Your notifications page shows them either way.",
		"settings.on":     "Email me notifications",
		"settings.off":    "Do not email me",
		"settings.save":   "Save",
		"settings.saved":  "Your choice is saved.",
		"settings.link":   "Email settings",
		"unsub.title":     "Stop email notifications",
		"unsub.lead":      "Stop emailing notifications to %s? Your notifications page still shows them.",
		"unsub.button":    "Stop the emails",
		"unsub.done":      "Done: no more notification emails go to %s.",
		"unsub.undo":      "Changed your mind? Sign in and turn them back on in your email settings.",
		"unsub.undo.link": "Email settings",
	},
	LangFR: {
		"settings.title":  "Notifications par courriel",
		"settings.lead":   "Choisissez si nous vous écrivons au sujet des nouvelles enquêtes, des enquêtes bientôt expirées et des statistiques d’enquête. Votre page de notifications les affiche dans tous les cas.",
		"settings.on":     "M’envoyer les notifications par courriel",
		"settings.off":    "Ne pas m’écrire",
		"settings.save":   "Enregistrer",
		"settings.saved":  "Votre choix est enregistré.",
		"settings.link":   "Réglages des courriels",
		"unsub.title":     "Ne plus recevoir de notifications par courriel",
		"unsub.lead":      "Ne plus envoyer de notifications par courriel à %s ? Votre page de notifications les affiche toujours.",
		"unsub.button":    "Arrêter les courriels",
		"unsub.done":      "C’est fait : plus aucune notification par courriel ne sera envoyée à %s.",
		"unsub.undo":      "Vous avez changé d’avis ? Connectez-vous et réactivez-les dans vos réglages des courriels.",
		"unsub.undo.link": "Réglages des courriels",
	},
}

// LogPath is path as it may be logged: the token of an unsubscribe address
// is a credential (it turns the user's email off), so an access log or an
// error line shows /unsubscribe/REDACTED instead.
func LogPath(path string) string {
	if strings.HasPrefix(path, "/unsubscribe/") {
		return "/unsubscribe/REDACTED"
	}
	return path
}
