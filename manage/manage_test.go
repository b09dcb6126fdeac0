package manage_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/microapps/microapps/manage"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store"
	"github.com/microapps/microapps/store/storetest"
)

// The console shows a refusal next to the field it concerns and words a
// warning by its kind: those are part of the service's answer.
func TestVerdictsNameTheirFieldAndKind(t *testing.T) {
	t.Parallel()
	brand := qualtricssim.Generate(3, qualtricssim.Spec{BrandID: "verdicts", Surveys: 1, Recipients: 5})
	sim := httptest.NewServer(qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}}))
	t.Cleanup(sim.Close)
	gone := httptest.NewServer(nil)
	gone.Close()
	kr := mustKeyring(t)
	st := storetest.New(t)
	svc := manage.New(manage.Options{Store: st, Keyring: kr, AllowedHosts: []string{"127.0.0.1"}, VerifyTimeout: 5 * time.Second})
	ctx := context.Background()
	write := func(baseURL, token string) manage.IntegrationPatch {
		name := "Verdicts"
		return manage.IntegrationPatch{Name: &name, BaseURL: &baseURL, Credential: &manage.Credential{Token: &token}}
	}

	_, err := svc.Create(ctx, "pat@example.com", write(sim.URL+"/API/v3/", "WrongToken000000000000000000"))
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Rejected || me.Field != "token" {
		t.Fatalf("wrong token: %#v", err)
	}
	_, err = svc.Create(ctx, "pat@example.com", write(gone.URL+"/API/v3/", brand.Users[0].Tokens[0]))
	if !errors.As(err, &me) || me.Kind != manage.Unreachable || me.Field != "baseUrl" {
		t.Fatalf("unreachable: %#v", err)
	}
	if page, _ := st.ListIntegrationsPage(ctx, store.IntegrationQuery{Limit: 1}); len(page.Items) != 0 {
		t.Fatalf("refused integrations were stored: %d", len(page.Items))
	}

	// The analyst's token is no Brand Admin's: created, with a warning on the token.
	c, err := svc.Create(ctx, "pat@example.com", write(sim.URL+"/API/v3/", brand.Users[1].Tokens[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Kind != manage.WarnNotBrandAdmin || c.Warnings[0].Field != "token" {
		t.Fatalf("warnings %+v", c.Warnings)
	}
	if _, _, err := svc.TriggerSync(ctx, "pat@example.com", c.Integration.ID, "incremental"); !errors.As(err, &me) || me.Kind != manage.Conflict {
		t.Fatalf("incremental before a full sync: %#v", err)
	}
	evs, err := svc.IntegrationAuditEvents(ctx, c.Integration.ID, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Actor != "pat@example.com" || evs[0].Action != "integration.create" {
		t.Fatalf("audit %+v %v", evs, err)
	}
}
