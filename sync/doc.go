// Package gitsync follows the desired-state Git repository: it polls the
// remote branch cheaply, fetches only when the branch moved, exposes the
// fetched commit's tree as a read-only fs.FS, tells the caller how the
// branch moved since the commit it last applied, and, for a repository on
// the same host, signals pushes the moment the ref changes.
//
// The package lives in directory sync/ but is named gitsync, so that it
// does not shadow the standard library's sync package in the files that
// import it (and so this package can use sync.Mutex itself). Importers
// write
//
//	import gitsync "metacircular.net/mcp/sync"
//
// # The cache
//
// Source keeps a bare clone under Config.CacheDir. Nothing is ever checked
// out: the spec loader reads files straight from Git objects through
// Revision.Tree. The cache's ref refs/remotes/origin/<branch> records what
// was last downloaded from the remote, never what is trusted or applied —
// the agent keeps the last applied commit in its registry and passes it to
// Check. Full history is fetched (no shallow clone) because telling a
// backwards move from a forward one needs the ancestry.
//
// # Verify before use
//
// A Verifier (WithVerifier) runs inside Fetch (and Revision) on the commit
// at the branch head after its objects are downloaded and before any
// Revision is returned, so no caller ever sees the tree of a commit that failed
// verification. A refused commit's objects sit in the private cache;
// nothing reads them.
//
// # Transports
//
// go-git does the work for every scheme. For a local path or file://, Head
// reads the ref straight from the repository (no process), and Fetch runs
// git-upload-pack through go-git's file transport, so the node needs the
// git package for local repositories (and only for them). For http(s) the
// caller's
// context bounds each request. For ssh, go-git bounds only the TCP
// connect, so each operation's connection is made through a dialer that
// closes it when the context ends (see sshdial.go); host keys are always
// checked against Config.KnownHostsFile, and go-git still honours
// Hostname/Port from the user's ~/.ssh/config.
//
// # Watching
//
// Watch (fsnotify) works for local repositories, bare or not; a work tree
// made by `git worktree add` (a .git file, not a directory) is not
// followed, and polling covers it.
//
// # Errors
//
// Every remote error is wrapped with the operation, the URL (credentials
// removed) and the branch, and, when the cause can be told, carries one of
// the sentinel kinds (ErrUnreachable, ErrAuth, ErrHostKey,
// ErrRepositoryNotFound, ErrBranchNotFound) for errors.Is. A remote that
// is down or hangs past the caller's deadline is an ErrUnreachable: the
// agent keeps running what it has and retries with a Backoff. A branch
// that moved backwards is a *BackwardsError from Check, and a refused
// commit a *VerifyError.
package gitsync
