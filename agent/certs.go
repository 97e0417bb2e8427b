package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/certs/acme"
	"metacircular.net/mcp/executor/certs/localca"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/registry"
)

// CertSetup is what the daemon needs to run certificates: the executor
// option and, when HTTP-01 is configured, the responder to serve.
type CertSetup struct {
	// Option is nil when certificates are off.
	Option executor.Option
	HTTP01 *acme.HTTP01
	// Listen is where HTTP01 is served ("" when it is not).
	Listen string
}

// CertOptions builds the certificate issuer the configuration names: the
// embedded local CA (default) or an ACME CA, whose DNS-01 zones are served
// by the DNS drivers in zones (nil: built from the [[dns]] tables). With
// certificates off (Config.CertsOn) the setup is empty and Options returns
// nothing.
func CertOptions(cfg *Config, log *slog.Logger, zones []dns.Zone) (CertSetup, error) {
	if !cfg.CertsOn() {
		return CertSetup{}, nil
	}
	// One directory for the files mcp writes and the proxy reads.
	certDir := cfg.Certs.ProxyCertDir
	switch {
	case certDir == "" && cfg.Proxy.CertDir != "":
		certDir = cfg.Proxy.CertDir
	case certDir == "":
		certDir = certs.DefaultProxyCertDir
	case cfg.Proxy.Driver != "" && cfg.Proxy.CertDir != "" && cfg.Proxy.CertDir != certDir:
		return CertSetup{}, fmt.Errorf("%s: certs.proxy_cert_dir %s differs from proxy.cert_dir %s: the proxy would not find the certificates; set one of them",
			cfg.File, certDir, cfg.Proxy.CertDir)
	}
	var (
		issuer certs.Issuer
		setup  CertSetup
		name   = cfg.Certs.Issuer
	)
	switch cfg.Certs.Issuer {
	case "", IssuerLocal:
		name = IssuerLocal
		issuer = localca.New(cfg.LocalCADir(), localca.WithName("mcp "+cfg.Node))
	case IssuerACME:
		a := cfg.ACME
		ac := acme.Config{
			DirectoryURL: a.DirectoryURL, EABKeyID: a.EABKeyID, EABHMACFile: a.EABHMACFile,
			CAFile: a.CAFile, Contact: a.Contact, StateDir: cfg.ACMEStateDir(),
			PropagationTimeout: a.PropagationTimeout.Duration,
		}
		if a.HTTP01Listen != "" {
			setup.HTTP01, setup.Listen = acme.NewHTTP01(), a.HTTP01Listen
			ac.HTTP01 = setup.HTTP01
		}
		if zones == nil && len(a.Zones) > 0 {
			var err error
			if zones, err = cfg.DNSZones(); err != nil {
				return setup, fmt.Errorf("%s: %w", cfg.File, err)
			}
		}
		for i, z := range a.Zones {
			az := acme.Zone{Zone: z.Zone, Challenge: z.Challenge, Nameserver: z.Nameserver}
			if z.Challenge == acme.ChallengeDNS01 {
				dz, ok := dns.Lookup(zones, "_acme-challenge."+z.Zone)
				if !ok {
					return setup, fmt.Errorf("%s: acme.zones[%d]: zone %s uses dns-01 but no [[dns]] entry serves it", cfg.File, i, z.Zone)
				}
				// Records are written to the zone the driver serves,
				// which may be a parent of the ACME zone.
				az.Zone, az.DNS = dz.Name, dz.Provider
			}
			ac.Zones = append(ac.Zones, az)
		}
		c, err := acme.New(ac, acme.WithLogger(log))
		if err != nil {
			return setup, fmt.Errorf("%s: %w", cfg.File, err)
		}
		issuer = c
	default:
		return setup, fmt.Errorf("%s: certs.issuer: %q is not one of local, acme", cfg.File, cfg.Certs.Issuer)
	}
	opts := []executor.CertOption{
		executor.CertProxyDir(certDir),
		executor.CertRenewBefore(cfg.Certs.RenewWindow()),
		executor.CertIssuerName(name),
	}
	if uid, gid := cfg.Certs.Owner(); uid >= 0 {
		opts = append(opts, executor.CertProxyOwner(uid, gid))
	}
	setup.Option = executor.WithCerts(issuer, cfg.CertStateDir(), opts...)
	return setup, nil
}

// Options returns the executor options (none when certificates are off).
func (s CertSetup) Options() []executor.Option {
	if s.Option == nil {
		return nil
	}
	return []executor.Option{s.Option}
}

// serveHTTP01 binds the HTTP-01 listener (so a taken port fails the start)
// and returns the function that serves it until ctx ends.
func serveHTTP01(ctx context.Context, addr string, h http.Handler) (func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("acme.http01_listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return func() error {
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("acme.http01_listen: %w", err)
		}
		return nil
	}, nil
}

// renewCerts runs the renewal check of every reconcile: certificates inside
// the renewal window are replaced and their consumers re-pointed; outside
// it nothing is requested. A failure leaves the previous certificate
// serving; it is logged and recorded as a failure event, and retried on
// the next pass.
func (a *Agent) renewCerts(ctx context.Context) {
	out, err := a.exec.RenewCerts(ctx, a.now())
	if err != nil {
		a.log.Error("certificate renewal check", "err", err)
		return
	}
	for _, r := range out {
		if r.Err != nil && r.Repeated {
			a.log.Warn("certificate renewal still failing; the current certificate keeps serving", "hostname", r.Hostname, "err", r.Err)
			continue
		}
		if r.Err != nil {
			a.RecordEvent(ctx, registry.Event{Kind: registry.EventFailure,
				Message: fmt.Sprintf("renew certificate for %s: %v (the current certificate keeps serving)", r.Hostname, r.Err)})
			continue
		}
		a.log.Info("certificate renewed", "hostname", r.Hostname, "not_after", r.NotAfter.UTC().Format(time.RFC3339),
			"repointed", strings.Join(r.Repointed, ", "))
	}
}

// certStatus adds each service's certificates (hostname, expiry, files)
// from the registry's records. A record shared by two services shows in
// both, each with its own files.
func (a *Agent) certStatus(ctx context.Context, services []api.ServiceStatus) {
	recs, err := executor.ReadCertRecords(ctx, a.reg)
	if err != nil {
		a.log.Warn("status: certificates", "err", err)
		return
	}
	for i := range services {
		for _, r := range recs {
			if !slices.ContainsFunc(r.Users, func(u executor.CertUser) bool { return u.Service == services[i].Name }) {
				continue
			}
			cs := api.CertStatus{Hostname: r.Hostname, Issuer: r.Issuer, NotAfter: r.NotAfter, Fingerprint: r.Fingerprint,
				RenewAt: r.NotAfter.Add(-a.cfg.Certs.RenewWindow())}
			for _, f := range r.Files {
				if f.Service != services[i].Name {
					continue
				}
				if f.Foreign {
					cs.Foreign = append(cs.Foreign, f.Path)
				} else {
					cs.Files = append(cs.Files, f.Path)
				}
			}
			services[i].Certs = append(services[i].Certs, cs)
		}
	}
}
