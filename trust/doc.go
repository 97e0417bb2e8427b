// Package trust decides whether a commit of the desired-state repository
// may be applied: it is the gitsync.Verifier the agent installs from its
// [trust] configuration.
//
// # Policies
//
//   - off (the default): every commit is applied. Anyone who can push to
//     the branch can run containers as root on every node.
//   - head: the commit at the branch head must carry a good signature by a
//     trusted key.
//   - all: every commit between the last applied one (exclusive) and the
//     head (inclusive) must, so that an unsigned commit cannot hide behind a
//     signed one pushed on top. With nothing applied yet only the head is
//     checked (the history before the node's first deploy is not its
//     business). When the applied commit is not an ancestor of the head (a
//     rewritten branch), every commit not reachable from it is checked.
//
// # Signatures
//
// SSH signatures (git's gpg.format=ssh) are checked against an
// allowed_signers file in the format of ssh-keygen(1) ("ALLOWED SIGNERS"):
// one key per line, `principals [options] keytype base64-key [comment]`.
// The options honoured are namespaces="..." (the signature's namespace,
// always "git" for commits, must be listed), valid-after and valid-before
// (compared with the commit's committer time, as git does). A
// cert-authority line is skipped: certificates are not supported. The
// signature must use namespace "git", which is what git writes.
//
// OpenPGP signatures are checked against a keyring file (armored or binary,
// e.g. `gpg --export --armor KEYID > keyring.asc`).
//
// Both files are read at every verification, so adding or removing a key
// takes effect at the next poll without a restart.
//
// # Refusals
//
// A refused commit is a *Refusal naming the commit and what was seen:
//
//	commit 1a2b3c4d5e6f: unsigned
//	commit 1a2b3c4d5e6f: signed by SHA256:Jq2... (ssh-ed25519), not in allowed_signers
//	commit 1a2b3c4d5e6f: signed by OpenPGP key 0x9F3A..., not in the keyring
//	commit 1a2b3c4d5e6f: bad signature by SHA256:Jq2... (ssh-ed25519): ...
//
// and matches ErrUnsigned, ErrUntrusted or ErrBadSignature with errors.Is.
package trust
