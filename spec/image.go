package spec

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// The grammar of the OCI distribution reference, kept to what a
	// definition needs: a lowercase repository path, a tag, a sha256 digest.
	tagRe       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRe    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	pathPartRe  = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	registryRe  = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	maxImageRef = 512
)

// parseImage splits an image reference into its tag and digest, or says
// why it is not one a deployer may run. An untagged reference means
// ":latest" to every runtime, and ":latest" moves under a running service,
// so both are refused; a digest pins the image on its own.
func parseImage(ref string) (tag, digest, problem string) {
	if ref == "" {
		return "", "", "it is empty"
	}
	if len(ref) > maxImageRef {
		return "", "", fmt.Sprintf("it is %d characters long, more than %d", len(ref), maxImageRef)
	}
	name := ref
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		name, digest = ref[:at], ref[at+1:]
		if !digestRe.MatchString(digest) {
			return "", "", fmt.Sprintf("digest %s is not sha256:<64 lowercase hex digits>", quoteShort(digest))
		}
	}
	if slash, colon := strings.LastIndexByte(name, '/'), strings.LastIndexByte(name, ':'); colon > slash {
		name, tag = name[:colon], name[colon+1:]
		if !tagRe.MatchString(tag) {
			return "", "", fmt.Sprintf("tag %s is not valid (letters, digits, '_', '.', '-'; at most 128)", quoteShort(tag))
		}
	}
	parts := strings.Split(name, "/")
	// The first part is a registry host when it looks like one, as in the
	// distribution reference rules.
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:[") || parts[0] == "localhost") {
		if !registryRe.MatchString(parts[0]) {
			return "", "", fmt.Sprintf("registry %s is not a host[:port]", quoteShort(parts[0]))
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if !pathPartRe.MatchString(p) {
			return "", "", fmt.Sprintf("repository path part %s is not lowercase letters and digits separated by '.', '_' or '-'", quoteShort(p))
		}
	}
	if tag == "latest" {
		return "", "", "it uses the tag latest, which moves under a running service; pin a version tag such as :v1.2.3 or a digest @sha256:..."
	}
	if tag == "" && digest == "" {
		return "", "", "it has no tag, which means :latest; pin a version tag such as :v1.2.3 or a digest @sha256:..."
	}
	return tag, digest, ""
}

// versionProblem says why v cannot be an image tag, or "".
func versionProblem(v string) string {
	if !tagRe.MatchString(v) {
		return "a version is an image tag: letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'"
	}
	if v == "latest" {
		return "latest moves under a running service; pin a version such as v1.2.3"
	}
	return ""
}
