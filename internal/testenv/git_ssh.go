package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// GitSSH is an in-process SSH server on 127.0.0.1 that serves one bare
// repository by running the real git-upload-pack / git-receive-pack for
// each exec request. It accepts only the generated client key.
type GitSSH struct {
	// URL is ssh://git@127.0.0.1:<port>/<base name of the repository>.
	URL string
	// Addr is the listening host:port.
	Addr string
	// KeyFile is the client's private key (OpenSSH PEM, no passphrase).
	KeyFile string
	// KnownHostsFile trusts exactly this server's host key for Addr.
	KnownHostsFile string
	// KnownHostsLine is that file's one line.
	KnownHostsLine string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey

	bare string
	l    net.Listener
	wg   sync.WaitGroup
}

// GitSSHServer starts a GitSSH for bareDir, stopped when the test ends.
func GitSSHServer(t testing.TB, bareDir string) *GitSSH {
	t.Helper()
	dir := t.TempDir()
	hostSigner := newSigner(t)
	clientPub, clientPEM := newKeyPEM(t)
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, clientPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), clientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown public key")
		},
	}
	cfg.AddHostKey(hostSigner)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &GitSSH{
		Addr:    l.Addr().String(),
		KeyFile: keyFile,
		HostKey: hostSigner.PublicKey(),
		bare:    bareDir,
		l:       l,
	}
	s.URL = "ssh://git@" + s.Addr + "/" + filepath.Base(bareDir)
	s.KnownHostsFile = WriteKnownHosts(t, s.Addr, s.HostKey)
	line, err := os.ReadFile(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	s.KnownHostsLine = strings.TrimSpace(string(line))

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveConn(c, cfg)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Close stops accepting connections and waits for open ones to finish.
func (s *GitSSH) Close() {
	s.l.Close()
	s.wg.Wait()
}

// WriteKnownHosts writes a known_hosts file trusting key for addr
// (host:port) and returns its path. Tests use it with another key to check
// that a wrong host key is refused.
func WriteKnownHosts(t testing.TB, addr string, key ssh.PublicKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewSSHPublicKey returns a fresh, unrelated public key (for a wrong
// known_hosts entry or an unauthorised client).
func NewSSHPublicKey(t testing.TB) ssh.PublicKey { return newSigner(t).PublicKey() }

// NewSSHKeyFile writes a fresh private key no server trusts and returns its
// path.
func NewSSHKeyFile(t testing.TB) string {
	t.Helper()
	_, pemBytes := newKeyPEM(t)
	p := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeyPEM(t testing.TB) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

func (s *GitSSH) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return // handshake refused (wrong key, client rejected host key)
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.serveSession(ch, chReqs)
	}
}

// serveSession runs one exec request. Only "git-upload-pack '<repo>'" and
// "git-receive-pack '<repo>'" for the served repository are accepted.
func (s *GitSSH) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL" {
				env = append(env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			sub, ok := s.parseCommand(p.Command)
			if !ok {
				_ = req.Reply(false, nil)
				fmt.Fprintf(ch.Stderr(), "command not allowed: %q\n", p.Command)
				sendExit(ch, 1)
				return
			}
			_ = req.Reply(true, nil)
			sendExit(ch, s.run(ch, sub, env))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *GitSSH) parseCommand(cmd string) (sub string, ok bool) {
	name, arg, found := strings.Cut(cmd, " ")
	if !found {
		return "", false
	}
	arg = strings.Trim(arg, "'\"")
	arg = strings.TrimPrefix(arg, "/")
	if arg != filepath.Base(s.bare) {
		return "", false
	}
	switch name {
	case "git-upload-pack":
		return "upload-pack", true
	case "git-receive-pack":
		return "receive-pack", true
	}
	return "", false
}

// run pipes the channel to `git <sub> <bare>` and returns its exit code.
func (s *GitSSH) run(ch ssh.Channel, sub string, env []string) int {
	cmd := exec.Command("git", sub, s.bare)
	cmd.Env = append(gitEnv(os.TempDir()), env...)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(ch.Stderr(), err)
		return 1
	}
	// Not waited for: it ends when the client closes the channel, which
	// may be after the process exits.
	go func() {
		_, _ = io.Copy(stdin, ch)
		stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 1
	}
	return 0
}

func sendExit(ch ssh.Channel, code int) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}
