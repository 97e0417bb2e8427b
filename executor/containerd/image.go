package containerd

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/pkg/reference"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// EnsureImage makes ref available and unpacked in mcp's namespace and
// returns the digest it resolves to (the manifest, or the index for a
// multi-platform image): the value to pin containers to.
//
// References must be fully qualified (host/path:tag or host/path@digest).
// An image already present locally is not looked up again in the registry:
// mcp treats tags as immutable (definitions must pin a tag, and the digest
// recorded at the first pull is what containers run).
//
// Each image gets a second name, <repository>@<digest>, so containers can
// be pinned by digest, and an OCI archive under <StateDir>/images. When the
// pull fails (registry or DNS down, credentials rejected) and that archive
// exists, the image is restored from it and the pull error is only logged.
func (d *Driver) EnsureImage(ctx context.Context, ref string) (string, error) {
	ctx = d.nsCtx(ctx)
	rs, err := reference.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("ensure image %s: parse reference: %w", ref, err)
	}
	img, err := d.localImage(ctx, ref, rs)
	if errdefs.IsNotFound(err) {
		img, err = d.pull(ctx, ref, rs)
		if err != nil && ctx.Err() == nil {
			var rerr error
			img, rerr = d.restore(ctx, ref, rs)
			if rerr != nil {
				if errors.Is(rerr, errNoArchive) {
					return "", err // no copy of ours: the pull error is the story
				}
				return "", errors.Join(err, rerr)
			}
			d.log.Warn("pull failed, image restored from mcp's archive",
				"ref", ref, "digest", img.Target.Digest, "error", err)
			err = nil
		}
	}
	if err != nil {
		return "", err
	}
	if err := d.finishImage(ctx, img, rs); err != nil {
		return "", err
	}
	return img.Target.Digest.String(), nil
}

// localImage finds ref in containerd, by its digest name first when the
// reference carries a digest.
func (d *Driver) localImage(ctx context.Context, ref string, rs reference.Spec) (images.Image, error) {
	is := d.client.ImageService()
	if dg := rs.Digest(); dg != "" {
		img, err := is.Get(ctx, digestName(rs, dg))
		if err == nil || !errdefs.IsNotFound(err) {
			return img, wrapErr(err, "look up image %s", ref)
		}
	}
	img, err := is.Get(ctx, ref)
	if err != nil && !errdefs.IsNotFound(err) {
		return img, fmt.Errorf("look up image %s: %w", ref, err)
	}
	return img, err
}

func (d *Driver) pull(ctx context.Context, ref string, rs reference.Spec) (images.Image, error) {
	host := rs.Hostname()
	img, err := d.client.Pull(ctx, ref,
		client.WithPullUnpack,
		client.WithPullSnapshotter(d.snapshotter),
		client.WithResolver(d.resolver()))
	if err != nil {
		return images.Image{}, d.pullError(ref, host, err)
	}
	d.log.Info("pulled image", "ref", ref, "digest", img.Target().Digest)
	return img.Metadata(), nil
}

// finishImage makes sure the image is unpacked for mcp's snapshotter, has
// its digest name, and that mcp's archive of it exists.
func (d *Driver) finishImage(ctx context.Context, img images.Image, rs reference.Spec) error {
	ci := client.NewImage(d.client, img)
	ok, err := ci.IsUnpacked(ctx, d.snapshotter)
	if err != nil {
		return fmt.Errorf("check image %s is unpacked: %w", img.Name, err)
	}
	if !ok {
		if err := ci.Unpack(ctx, d.snapshotter); err != nil {
			return fmt.Errorf("unpack image %s: %w", img.Name, err)
		}
	}
	names := []string{img.Name}
	if alias := digestName(rs, img.Target.Digest); alias != img.Name {
		_, err := d.client.ImageService().Create(ctx, images.Image{Name: alias, Target: img.Target})
		if err != nil && !errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("name image %s: %w", alias, err)
		}
		names = append(names, alias)
	}
	return d.writeArchive(ctx, img.Target.Digest, names)
}

func (d *Driver) archivePath(dg digest.Digest) string {
	return filepath.Join(d.imagesDir(), dg.Encoded()+".tar")
}

// writeArchive exports the image under all its names to
// <StateDir>/images/<hex>.tar, atomically (temp file, fsync, rename), once.
func (d *Driver) writeArchive(ctx context.Context, dg digest.Digest, names []string) error {
	path := d.archivePath(dg)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.CreateTemp(d.imagesDir(), ".export-*.tmp")
	if err != nil {
		return fmt.Errorf("archive image %s: %w", dg, err)
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	defer f.Close()
	is := d.client.ImageService()
	opts := []archive.ExportOpt{
		archive.WithPlatform(platforms.Default()),
		// A multi-platform index keeps only this platform's blobs.
		archive.WithSkipMissing(d.client.ContentStore()),
	}
	for _, n := range names {
		opts = append(opts, archive.WithImage(is, n))
	}
	if err := d.client.Export(ctx, f, opts...); err != nil {
		return fmt.Errorf("archive image %s: export: %w", dg, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("archive image %s: %w", dg, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive image %s: %w", dg, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("archive image %s: %w", dg, err)
	}
	d.log.Info("archived image", "digest", dg, "path", path)
	return nil
}

// errNoArchive: mcp has no copy of the image.
var errNoArchive = errors.New("no archive of this image")

// restore imports mcp's archive of ref into containerd. It returns
// errNoArchive when mcp has no copy.
func (d *Driver) restore(ctx context.Context, ref string, rs reference.Spec) (images.Image, error) {
	path, err := d.findArchive(rs, ref)
	if err != nil {
		return images.Image{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return images.Image{}, fmt.Errorf("restore image %s: %w", ref, err)
	}
	defer f.Close()
	if _, err := d.client.Import(ctx, f, client.WithSkipMissing()); err != nil {
		return images.Image{}, fmt.Errorf("restore image %s from %s: %w", ref, filepath.Base(path), err)
	}
	img, err := d.localImage(ctx, ref, rs)
	if err != nil {
		return images.Image{}, fmt.Errorf("restore image %s from %s: %w", ref, filepath.Base(path), err)
	}
	d.log.Info("restored image from archive", "ref", ref, "digest", img.Target.Digest)
	return img, nil
}

// findArchive returns the archive holding ref: by file name when the
// reference carries a digest, otherwise by the image names recorded in
// each archive's index.json (the archives are the only record, so they
// cannot disagree with it).
func (d *Driver) findArchive(rs reference.Spec, ref string) (string, error) {
	if dg := rs.Digest(); dg != "" {
		if dg.Validate() != nil {
			return "", fmt.Errorf("restore image %s: bad digest: %w", ref, errNoArchive)
		}
		p := d.archivePath(dg)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("restore image %s: %w", ref, errNoArchive)
		}
		return p, nil
	}
	entries, err := os.ReadDir(d.imagesDir())
	if err != nil {
		return "", fmt.Errorf("restore image %s: %w", ref, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tar") {
			continue
		}
		p := filepath.Join(d.imagesDir(), e.Name())
		names, err := archiveNames(p)
		if err != nil {
			d.log.Warn("unreadable image archive", "path", p, "error", err)
			continue
		}
		for _, n := range names {
			if n == ref {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("restore image %s: %w", ref, errNoArchive)
}

// archiveNames reads the image names recorded in an OCI archive's index.
func archiveNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// tar.Reader skips file bodies by seeking, so this reads headers only.
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no index.json")
		}
		if err != nil {
			return nil, err
		}
		if filepath.Clean(h.Name) != ocispec.ImageIndexFile {
			continue
		}
		var idx ocispec.Index
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return nil, fmt.Errorf("decode index.json: %w", err)
		}
		var names []string
		for _, m := range idx.Manifests {
			if n := m.Annotations[images.AnnotationImageName]; n != "" {
				names = append(names, n)
			}
		}
		return names, nil
	}
}

// PruneImages removes mcp's archives and containerd images (in mcp's
// namespace) whose digest is not in keep. The caller keeps the current and
// previous digest of each component; images that a container still uses
// are kept whatever keep says.
func (d *Driver) PruneImages(ctx context.Context, keep []string) error {
	ctx = d.nsCtx(ctx)
	keepSet := map[digest.Digest]bool{}
	for _, k := range keep {
		dg, err := digest.Parse(k)
		if err != nil {
			return fmt.Errorf("prune images: keep %q: %w", k, err)
		}
		keepSet[dg] = true
	}
	is := d.client.ImageService()
	cs, err := d.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("prune images: list containers: %w", err)
	}
	for _, c := range cs {
		info, err := c.Info(ctx)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("prune images: container %s: %w", c.ID(), err)
		}
		if img, err := is.Get(ctx, info.Image); err == nil {
			keepSet[img.Target.Digest] = true
		}
	}

	imgs, err := is.List(ctx)
	if err != nil {
		return fmt.Errorf("prune images: list images: %w", err)
	}
	for _, img := range imgs {
		if keepSet[img.Target.Digest] {
			continue
		}
		if err := is.Delete(ctx, img.Name); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("prune images: delete %s: %w", img.Name, err)
		}
		d.log.Info("pruned image", "name", img.Name, "digest", img.Target.Digest)
	}

	entries, err := os.ReadDir(d.imagesDir())
	if err != nil {
		return fmt.Errorf("prune images: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(d.imagesDir(), name)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			// An export interrupted by a crash; a recent one may still be
			// being written by a concurrent EnsureImage.
			info, err := e.Info()
			if err != nil || d.clock.Now().Sub(info.ModTime()) < staleExport {
				continue
			}
		case strings.HasSuffix(name, ".tar"):
			dg := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimSuffix(name, ".tar"))
			if keepSet[dg] {
				continue
			}
		default:
			continue
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("prune images: %w", err)
		}
		d.log.Info("pruned image archive", "path", p)
	}
	return nil
}

// staleExport is the age after which an unfinished export is debris.
const staleExport = time.Hour

// digestName is the repository name pinned to a digest: host/path@sha256:...
func digestName(rs reference.Spec, dg digest.Digest) string {
	return rs.Locator + "@" + dg.String()
}

func wrapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
