package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"metacircular.net/mcp/spec"
)

// ErrVolumeLink is returned for a volume whose host path goes through a
// symbolic link inside the service's data directory.
var ErrVolumeLink = errors.New("volume host path goes through a symbolic link")

// checkVolumeLinks refuses a volume whose host path passes through a
// symbolic link below /srv/<service>. A container owns that directory and
// can plant links in it; bind-mounting a path through such a link would
// hand the container whatever it points at on the host (/, /etc...).
// Links above the service's directory (an operator's /srv → /data/srv)
// are the host's business and are followed as usual. Components that do
// not exist yet are created as directories by the runtime.
func checkVolumeLinks(hostRoot, service string, vols []spec.Volume) error {
	if hostRoot == "" {
		hostRoot = "/"
	}
	base := filepath.Join(hostRoot, "srv", service)
	for _, v := range vols {
		rel, err := filepath.Rel(base, v.Host)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue // not below the service's own directory
		}
		p := base
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			p = filepath.Join(p, part)
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("check volume %s: %w", v.Host, err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return fmt.Errorf("volume %s: %s: %w (a container may have planted it; remove it on the host)", v, p, ErrVolumeLink)
			}
		}
	}
	return nil
}
