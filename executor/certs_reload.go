package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"metacircular.net/mcp/spec"
)

// reloadCert re-registers every l7 route mcp owns for hostname, after its
// certificate files were replaced: drivers compare the certificate the
// proxy has loaded with the files (haproxy by fingerprint) and load the new
// one, so traffic moves to it without a restart. It is how RenewCerts
// re-points the proxy (certs.go).
func (rr *routeRunner) reloadCert(ctx context.Context, hostname string) error {
	records, err := rr.records(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range records {
		if rec.Route.Mode != spec.ModeL7 || !strings.EqualFold(rec.Route.Hostname, hostname) {
			continue
		}
		if err := checkChain(rec.Route); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := rr.router.Upsert(ctx, rec.Route); err != nil {
			errs = append(errs, fmt.Errorf("re-register %s: %w", rec.Route, err))
		}
	}
	return errors.Join(errs...)
}
