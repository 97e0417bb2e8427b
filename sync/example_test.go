package gitsync_test

import (
	"context"
	"errors"
	"log/slog"
	"time"

	gitsync "metacircular.net/mcp/sync"
)

// The agent's loop in outline: wake on the watcher, the poll timer or a
// retry; poll with Head (cheap); Fetch only when the head differs from the
// applied commit; Check the movement before applying; back off while the
// remote fails, keeping what runs untouched.
func Example() {
	ctx := context.Background()
	src, err := gitsync.New(gitsync.Config{
		URL:      "git@git.example.com:ops/desired-state.git",
		Branch:   "main",
		CacheDir: "/var/lib/mcp/git",
		// SSHKeyFile, KnownHostsFile: required for ssh URLs.
	})
	if err != nil {
		slog.Error("git config", "err", err) // names the key: "git.known_hosts_file: ..."
		return
	}
	var applied gitsync.Hash // from the registry
	backoff := gitsync.NewBackoff(time.Second, 5*time.Minute, nil)
	poll := time.NewTicker(time.Minute)
	defer poll.Stop()
	watch := src.Watch(ctx)
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch:
		case <-poll.C:
		case <-time.After(wait):
		}
		wait = time.Hour // only a failure schedules a retry
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		head, err := src.Head(pctx)
		if err == nil && head != applied {
			var rev *gitsync.Revision
			if rev, err = src.Fetch(pctx); err == nil {
				var move gitsync.Movement
				if move, err = src.Check(pctx, applied, rev.Commit); err == nil {
					slog.Info("applying", "commit", rev.Commit, "movement", move)
					// spec.Load(rev.Tree) → planner → executor; on success:
					applied = rev.Commit
				}
			}
		}
		cancel()
		var back *gitsync.BackwardsError
		switch {
		case err == nil:
			backoff.Reset()
		case errors.As(err, &back):
			slog.Warn("not applied", "err", err) // until a new push or allow_backwards
		case errors.Is(err, gitsync.ErrUnreachable):
			wait = backoff.Next()
			slog.Warn("remote down; keeping what runs", "retry_in", wait, "err", err)
		default:
			wait = backoff.Next()
			slog.Error("sync", "err", err)
		}
	}
}
