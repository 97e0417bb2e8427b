//go:build deps

// Package deps pins the project's dependencies while the packages that use
// them are being written, so go.mod does not churn. It is never built.
package deps

import (
	_ "filippo.io/age"
	_ "github.com/BurntSushi/toml"
	_ "github.com/ProtonMail/go-crypto/openpgp"
	_ "github.com/containerd/containerd/api/events"
	_ "github.com/containerd/containerd/v2/client"
	_ "github.com/containerd/containerd/v2/core/images/archive"
	_ "github.com/containerd/containerd/v2/core/remotes/docker"
	_ "github.com/containerd/containerd/v2/pkg/cio"
	_ "github.com/containerd/containerd/v2/pkg/namespaces"
	_ "github.com/containerd/containerd/v2/pkg/oci"
	_ "github.com/containerd/errdefs"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/hiddeco/sshsig"
	_ "github.com/letsencrypt/pebble/v2/ca"
	_ "github.com/letsencrypt/pebble/v2/db"
	_ "github.com/letsencrypt/pebble/v2/va"
	_ "github.com/letsencrypt/pebble/v2/wfe"
	_ "github.com/miekg/dns"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/acme"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
)
