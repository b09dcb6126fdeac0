package qualtrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"time"
)

func (c *Client) endpointURL(query url.Values, segments ...string) *url.URL {
	u := *c.base
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	p := c.base.Path
	for _, s := range segments {
		p += s + "/"
	}
	p = p[:len(p)-1]
	u.Path, u.RawPath = "", ""
	if pu, err := url.Parse(p); err == nil {
		u.Path, u.RawPath = pu.Path, pu.RawPath
	}
	u.RawQuery = query.Encode()
	return &u
}

func get[T any](ctx context.Context, c *Client, endpoint string, u *url.URL) (T, error) {
	var out T
	err := c.do(ctx, call{method: http.MethodGet, endpoint: endpoint, url: u, idempotent: true}, func(b []byte) (wireMeta, error) {
		v, meta, err := decodeEnvelope[T](b)
		out = v
		return meta, err
	})
	if err == nil {
		noteMalformed(c, endpoint, []T{out})
	}
	return out, err
}

func requireID(endpoint, what, id string) error {
	if id == "" {
		return fmt.Errorf("qualtrics: %s: %s is required", endpoint, what)
	}
	return nil
}

// WhoAmI identifies the token: brand, datacenter and account type.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	return get[WhoAmI](ctx, c, EndpointWhoAmI, c.endpointURL(nil, "whoami"))
}

// Surveys walks GET /surveys one page at a time.
func (c *Client) Surveys(ctx context.Context) iter.Seq2[[]Survey, error] {
	return paginate[Survey](ctx, c, EndpointSurveysList, c.endpointURL(nil, "surveys"))
}

// Survey fetches one survey without keeping its question set.
func (c *Client) Survey(ctx context.Context, surveyID string) (SurveyDetail, error) {
	if err := requireID(EndpointSurveysGet, "survey ID", surveyID); err != nil {
		return SurveyDetail{}, err
	}
	return get[SurveyDetail](ctx, c, EndpointSurveysGet, c.endpointURL(nil, "surveys", surveyID))
}

// SurveyMeta fetches the metadata of a survey definition, BrandBaseURL above
// all (as BrandOrigin returns it, "" when it is not a Qualtrics host or an
// allowed one); questions, blocks and flow are skipped.
func (c *Client) SurveyMeta(ctx context.Context, surveyID string) (SurveyMeta, error) {
	if err := requireID(EndpointSurveyDefinitionsGet, "survey ID", surveyID); err != nil {
		return SurveyMeta{}, err
	}
	m, err := get[SurveyMeta](ctx, c, EndpointSurveyDefinitionsGet, c.endpointURL(nil, "survey-definitions", surveyID))
	if m.BrandBaseURL != "" {
		// Deep links go to this host: it must pass the base URL's host
		// policy, or it is treated as absent.
		m.BrandBaseURL, _ = BrandOrigin(m.BrandBaseURL, c.allowedHosts)
	}
	return m, err
}

// DistributionsQuery filters GET /distributions. SurveyID is required; zero
// dates and an empty RequestType mean no filter.
type DistributionsQuery struct {
	SurveyID      string
	SendStartDate time.Time
	SendEndDate   time.Time
	RequestType   RequestType
}

const queryTime = "2006-01-02T15:04:05Z"

// Distributions walks the distributions of one survey, one page at a time.
func (c *Client) Distributions(ctx context.Context, q DistributionsQuery) iter.Seq2[[]Distribution, error] {
	if q.SurveyID == "" {
		return failed[Distribution](requireID(EndpointDistributionsList, "survey ID", ""))
	}
	return paginate[Distribution](ctx, c, EndpointDistributionsList, c.distributionsURL(q))
}

func (c *Client) distributionsURL(q DistributionsQuery) *url.URL {
	v := url.Values{"surveyId": {q.SurveyID}}
	if !q.SendStartDate.IsZero() {
		v.Set("sendStartDate", q.SendStartDate.UTC().Format(queryTime))
	}
	if !q.SendEndDate.IsZero() {
		v.Set("sendEndDate", q.SendEndDate.UTC().Format(queryTime))
	}
	if q.RequestType != "" {
		v.Set("distributionRequestType", string(q.RequestType))
	}
	return c.endpointURL(v, "distributions")
}

// DistributionsPage reads one page of the distributions of one survey: the
// first when at is "", else the page a previous call returned as next. next
// is "" after the last page.
func (c *Client) DistributionsPage(ctx context.Context, q DistributionsQuery, at string) (page []Distribution, next string, err error) {
	if q.SurveyID == "" {
		return nil, "", requireID(EndpointDistributionsList, "survey ID", "")
	}
	return pageAt[Distribution](ctx, c, EndpointDistributionsList, c.distributionsURL(q), at)
}

// Distribution fetches one distribution.
func (c *Client) Distribution(ctx context.Context, distributionID string) (Distribution, error) {
	if err := requireID(EndpointDistributionsGet, "distribution ID", distributionID); err != nil {
		return Distribution{}, err
	}
	return get[Distribution](ctx, c, EndpointDistributionsGet, c.endpointURL(nil, "distributions", distributionID))
}

// DistributionHistory walks the per-recipient history of a distribution. The
// API answers 404 without an XM Directory licence and 400 for TestEmail
// distributions (see IsNotFound, IsBadRequest).
func (c *Client) DistributionHistory(ctx context.Context, distributionID string) iter.Seq2[[]HistoryEntry, error] {
	if distributionID == "" {
		return failed[HistoryEntry](requireID(EndpointDistributionsHistory, "distribution ID", ""))
	}
	return paginate[HistoryEntry](ctx, c, EndpointDistributionsHistory, c.endpointURL(nil, "distributions", distributionID, "history"))
}

// DistributionLinks walks the personal links (and emails) of a distribution.
func (c *Client) DistributionLinks(ctx context.Context, distributionID, surveyID string) iter.Seq2[[]Link, error] {
	if distributionID == "" || surveyID == "" {
		return failed[Link](requireID(EndpointDistributionsLinks, "distribution ID and survey ID", ""))
	}
	v := url.Values{"surveyId": {surveyID}}
	return paginate[Link](ctx, c, EndpointDistributionsLinks, c.endpointURL(v, "distributions", distributionID, "links"))
}

// DistributionHistoryPage reads one page of a distribution's history: the
// first when at is "", else the page a previous call returned as next. next
// is "" after the last page.
func (c *Client) DistributionHistoryPage(ctx context.Context, distributionID, at string) (entries []HistoryEntry, next string, err error) {
	if distributionID == "" {
		return nil, "", requireID(EndpointDistributionsHistory, "distribution ID", "")
	}
	return pageAt[HistoryEntry](ctx, c, EndpointDistributionsHistory, c.endpointURL(nil, "distributions", distributionID, "history"), at)
}

// DistributionLinksPage reads one page of a distribution's links, like
// DistributionHistoryPage.
func (c *Client) DistributionLinksPage(ctx context.Context, distributionID, surveyID, at string) (links []Link, next string, err error) {
	if distributionID == "" || surveyID == "" {
		return nil, "", requireID(EndpointDistributionsLinks, "distribution ID and survey ID", "")
	}
	v := url.Values{"surveyId": {surveyID}}
	return pageAt[Link](ctx, c, EndpointDistributionsLinks, c.endpointURL(v, "distributions", distributionID, "links"), at)
}

// CreateEventSubscription registers a callback (Brand Admin only) and returns
// its ID (SUB_…). It is not retried on 5xx or network errors: the server may
// have created it already.
func (c *Client) CreateEventSubscription(ctx context.Context, s NewEventSubscription) (string, error) {
	if s.PublicationURL == "" || s.Topics == "" {
		return "", errors.New("qualtrics: eventsubscriptions.create: publication URL and topics are required")
	}
	body, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("qualtrics: eventsubscriptions.create: %w", err)
	}
	var id string
	err = c.do(ctx, call{method: http.MethodPost, endpoint: EndpointEventSubscriptionsCreate, url: c.endpointURL(nil, "eventsubscriptions"), body: body},
		func(b []byte) (wireMeta, error) {
			v, meta, err := decodeEnvelope[struct {
				ID string `json:"id"`
			}](b)
			id = v.ID
			return meta, err
		})
	return id, err
}

// EventSubscriptions walks the brand's event subscriptions.
func (c *Client) EventSubscriptions(ctx context.Context) iter.Seq2[[]EventSubscription, error] {
	return paginate[EventSubscription](ctx, c, EndpointEventSubscriptionsList, c.endpointURL(nil, "eventsubscriptions"))
}

// EventSubscription fetches one event subscription.
func (c *Client) EventSubscription(ctx context.Context, id string) (EventSubscription, error) {
	if err := requireID(EndpointEventSubscriptionsGet, "subscription ID", id); err != nil {
		return EventSubscription{}, err
	}
	return get[EventSubscription](ctx, c, EndpointEventSubscriptionsGet, c.endpointURL(nil, "eventsubscriptions", id))
}

// DeleteEventSubscription removes one event subscription. Deleting is
// idempotent on the server, so it is retried like a GET.
func (c *Client) DeleteEventSubscription(ctx context.Context, id string) error {
	if err := requireID(EndpointEventSubscriptionsDelete, "subscription ID", id); err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodDelete, endpoint: EndpointEventSubscriptionsDelete, url: c.endpointURL(nil, "eventsubscriptions", id), idempotent: true},
		func(b []byte) (wireMeta, error) {
			if len(b) == 0 {
				return wireMeta{}, nil
			}
			_, meta, err := decodeEnvelope[json.RawMessage](b)
			return meta, err
		})
}
