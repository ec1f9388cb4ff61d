package app

import (
	"context"

	"github.com/google/go-github/v60/github"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/handlers"

	"github.com/basinix/basinix/store"
)

// A failed derivation's build asked again from its build page (see
// web.App.Restart) is a job.

type restartRequest struct {
	Drv, User, Repo string
}

// runRestart builds a derivation again, its remembered failure forgotten
// if it builds.
func (p *pipeline) runRestart(ctx context.Context, j *store.Job) error {
	var req restartRequest
	if err := j.Decode(&req); err != nil {
		return err
	}
	outs, err := p.rv.Rebuild(ctx, []string{req.Drv})
	if err != nil {
		return err
	}
	p.log.Info().Str("drv", req.Drv).Str("user", req.User).Str("result", string(outs[req.Drv].Result)).Msg("built again, asked from the web")
	return nil
}

// pageActions is what the web pages ask of the server.
type pageActions struct{ p *pipeline }

func (a pageActions) Commands(ctx context.Context, req handlers.CommandRequest) error {
	return a.p.Commands(ctx, req)
}

func (a pageActions) Restart(ctx context.Context, drv, user, repo string) error {
	return a.p.jobs.add(ctx, store.NewJob{Kind: jobRestart, Payload: restartRequest{Drv: drv, User: user, Repo: repo}})
}

func (a pageActions) Progress(revision int64) *build.Progress { return a.p.progress.get(revision) }

func (a pageActions) Live(drv string, from int) ([]byte, int, bool) {
	return a.p.rv.Pool().Live(drv, from)
}

func (a pageActions) Installation(id int64) (*github.Client, error) {
	return a.p.gh.NewInstallationClient(id)
}
