package qualtrics

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
)

func failed[T any](err error) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) { yield(nil, err) }
}

// paginate follows nextPage verbatim, one request per page. Each link is
// checked against the base URL policy first: a page may send the client to
// another datacenter (co1 → az1), but never off the policy. Only the links
// already followed are remembered, to turn a repeating nextPage into
// ErrPaginationLoop instead of an endless walk. The first error ends the walk.
func paginate[T any](ctx context.Context, c *Client, endpoint string, first *url.URL) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		seen := map[string]struct{}{}
		u := first
		for {
			key := u.String()
			if _, dup := seen[key]; dup {
				yield(nil, fmt.Errorf("qualtrics: %s: %w", endpoint, ErrPaginationLoop))
				return
			}
			seen[key] = struct{}{}
			p, err := fetchPage[T](ctx, c, endpoint, u)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(p.Elements, nil) || p.NextPage == "" {
				return
			}
			next, err := checkPageURL(p.NextPage, c.allowedHosts)
			if err != nil {
				yield(nil, fmt.Errorf("qualtrics: %s: refusing nextPage: %w", endpoint, err))
				return
			}
			u = next
		}
	}
}

func fetchPage[T any](ctx context.Context, c *Client, endpoint string, u *url.URL) (page[T], error) {
	var p page[T]
	err := c.do(ctx, call{method: http.MethodGet, endpoint: endpoint, url: u, idempotent: true}, func(b []byte) (wireMeta, error) {
		var err error
		p, err = decodePage[T](b)
		return p.Meta, err
	})
	if err == nil {
		noteMalformed(c, endpoint, p.Elements)
	}
	return p, err
}

// pageAt reads one page of a listing: the first (at == "") or the one a
// previous page's nextPage named, checked against the host policy. It
// returns the page and its nextPage ("" on the last page), so a caller can
// stop between pages and continue later, even in another process.
func pageAt[T any](ctx context.Context, c *Client, endpoint string, first *url.URL, at string) ([]T, string, error) {
	u := first
	if at != "" {
		next, err := checkPageURL(at, c.allowedHosts)
		if err != nil {
			return nil, "", fmt.Errorf("qualtrics: %s: refusing nextPage: %w", endpoint, err)
		}
		u = next
	}
	p, err := fetchPage[T](ctx, c, endpoint, u)
	if err != nil {
		return nil, "", err
	}
	if p.NextPage == at && at != "" {
		return nil, "", fmt.Errorf("qualtrics: %s: %w", endpoint, ErrPaginationLoop)
	}
	return p.Elements, p.NextPage, nil
}
