// Command hello is the workload of mcp's integration tests and of the demo
// (demo.sh): a tiny static HTTP server that internal/testenv and
// internal/demo pack into an OCI image (internal/ociimage) and push to a
// registry.
//
// It listens on 0.0.0.0:$PORT and on every $PORT_<NAME>, and answers
//
//	GET /          200 "hello version=<VERSION> port=<port>"
//	GET /healthz   200 "ok" (503 in the unhealthy mode)
//	GET /env/NAME  200 with the value of $NAME (404 if unset), so tests can
//	               check what the deployer put in the environment
//
// logging one line per request to stdout. SIGTERM (or SIGINT) shuts it down
// cleanly with exit status 0.
//
// $HELLO_MODE makes a bad version for rollout tests:
//
//	crash      exit 1 at start
//	nolisten   run, but never listen
//	unhealthy  listen, but /healthz answers 503
//
// $HELLO_START_DELAY (a Go duration) waits that long before listening, to
// exercise health waits.
//
// $HELLO_TLS_CERT and $HELLO_TLS_KEY (PEM files) serve TLS with that
// certificate, for TLS passed through a proxy untouched (l4 routes). TLS is
// on every port, or only on the ports of the variables listed in
// $HELLO_TLS_ON (e.g. "PORT_PASS"), so one container can also serve a
// plain port behind a TLS-terminating (l7) route.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// version is the fallback when $VERSION is unset; the image builders set
// $VERSION in the image config, so every tag answers with its own version.
var version = "dev"

func main() {
	log.SetFlags(0)
	log.SetOutput(os.Stdout)
	if v := os.Getenv("VERSION"); v != "" {
		version = v
	}
	mode := os.Getenv("HELLO_MODE")
	log.Printf("hello version=%s mode=%q starting", version, mode)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	switch mode {
	case "", "unhealthy", "nolisten":
	case "crash":
		fmt.Fprintf(os.Stderr, "hello version=%s: crashing at start as asked (HELLO_MODE=crash)\n", version)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "hello: unknown HELLO_MODE %q\n", mode)
		os.Exit(2)
	}

	if d := os.Getenv("HELLO_START_DELAY"); d != "" {
		delay, err := time.ParseDuration(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "hello: HELLO_START_DELAY: %v\n", err)
			os.Exit(2)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}

	if mode == "nolisten" {
		log.Printf("hello version=%s: not listening (HELLO_MODE=nolisten)", version)
		<-ctx.Done()
		log.Printf("hello version=%s: stopping", version)
		return
	}

	ports := listenPorts()
	if len(ports) == 0 {
		fmt.Fprintln(os.Stderr, "hello: no $PORT or $PORT_<NAME> set")
		os.Exit(2)
	}

	var (
		wg      sync.WaitGroup
		servers []*http.Server
	)
	tlsCfg, tlsPorts, err := tlsSetup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		os.Exit(2)
	}
	for _, port := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
		if err != nil {
			fmt.Fprintf(os.Stderr, "hello: %v\n", err)
			os.Exit(1)
		}
		if tlsCfg != nil && (tlsPorts == nil || tlsPorts[port]) {
			ln = tls.NewListener(ln, tlsCfg)
		}
		srv := &http.Server{Handler: handler(port, mode == "unhealthy"), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Printf("hello: serve %s: %v", port, err)
			}
		}()
		log.Printf("hello version=%s listening on %s", version, ln.Addr())
	}

	<-ctx.Done()
	log.Printf("hello version=%s: stopping", version)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	wg.Wait()
}

// tlsSetup reads $HELLO_TLS_CERT and $HELLO_TLS_KEY; ports is nil when
// every port serves TLS, else the ports of the $HELLO_TLS_ON variables.
func tlsSetup() (*tls.Config, map[string]bool, error) {
	certFile, keyFile := os.Getenv("HELLO_TLS_CERT"), os.Getenv("HELLO_TLS_KEY")
	if certFile == "" && keyFile == "" {
		return nil, nil, nil
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("HELLO_TLS_CERT/HELLO_TLS_KEY: %w", err)
	}
	var ports map[string]bool
	if on := os.Getenv("HELLO_TLS_ON"); on != "" {
		ports = map[string]bool{}
		for _, name := range strings.Split(on, ",") {
			if p := os.Getenv(strings.TrimSpace(name)); p != "" {
				ports[p] = true
			}
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, ports, nil
}

// listenPorts returns $PORT and every $PORT_<NAME>, deduplicated and sorted
// so the start-up log is stable.
func listenPorts() []string {
	seen := map[string]bool{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if (k == "PORT" || strings.HasPrefix(k, "PORT_")) && v != "" {
			seen[v] = true
		}
	}
	ports := make([]string, 0, len(seen))
	for p := range seen {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	return ports
}

func handler(port string, unhealthy bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello version=%s port=%s\n", version, port)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy {
			http.Error(w, "unhealthy (HELLO_MODE=unhealthy)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, v)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		log.Printf("%s %s %s %d version=%s port=%s", r.RemoteAddr, r.Method, r.URL.Path, rec.status, version, port)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
