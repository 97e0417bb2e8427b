// Package statusnote writes and reads the per-node status records the
// agent publishes in the desired-state repository as git notes, so that
// "what runs where, and did it work?" can be answered from Git alone.
//
// # Where
//
// Each node writes only the notes ref refs/notes/mcp/<node>. A note is
// attached to the desired-state commit the node applied last, so
//
//	git fetch origin 'refs/notes/mcp/*:refs/notes/mcp/*'
//	git notes --ref=mcp/<node> show <commit>
//
// prints the node's record for that commit. Nodes never write each other's
// refs, and no node writes the operators' branches.
//
// # The record
//
// A note is one JSON object (Record), schema_version 1. Its fields are
// those of the agent's local status (api.Status: node, agent_version,
// applied_commit, branch, last_reconcile, services with their components,
// quarantine), plus schema_version, time (when the record was written),
// plan_hash (the last plan's hash) and planner (the registry snapshot,
// features and allow_remove_all the agent plans with, so that
// `mcp plan --from-git` computes the agent's plan and hash on any
// machine). Fields are only ever added; readers ignore what they do not
// know. Secret values never appear: definitions carry only their keyed
// digests, and planner.secrets the digest of every secret of the node
// (spec.NodeSecrets), so a plan made elsewhere binds the same ones.
//
// # The notes commits
//
// Notes commits are built with go-git plumbing (go-git has no notes API):
// a tree whose entries are named by the annotated object's hex id, flat
// up to 256 notes and with one level of two-hex-digit fan-out beyond, as
// git itself lays them out; both layouts (and deeper fan-outs written by
// git) are read. Every notes commit is signed with the agent's own key
// (an SSH key, in git's SSH signature format, or an OpenPGP key), so
// `git verify-commit refs/notes/mcp/<node>` checks it against an
// allowed_signers file or keyring that trusts the agent.
//
// # Concurrent writers
//
// A write fetches the remote notes ref, adds the note to that tree (the
// union of everything already there and the new note; on the same object
// a newer record wins, an older one is dropped) and pushes with a lease
// on the fetched value. When someone else pushed in between, the push is
// refused and the write starts over from the new remote value, up to a
// few attempts. So an operator's `git notes add` and an agent restarted
// mid-push lose nothing.
//
// # Liveness without growth
//
// A write whose record differs from the note already there only in its
// times is a liveness update. If the ref's tip is itself this node's
// liveness commit, the new commit replaces it (its parents are the tip's
// parents, pushed with the lease); otherwise it goes on top. So liveness
// adds at most one commit to the history however long the node runs, and
// the history grows only with changes and new failures. A repeated
// identical failure is liveness, too.
package statusnote
