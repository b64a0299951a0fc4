package lambda

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// SchemaResourceID is the physical id of the schema custom resource: the
// same on every deploy, so an update never replaces it (and a replacement
// never deletes the history).
const SchemaResourceID = "infinity-schema"

// responseMargin is kept free before the invocation's deadline to answer
// CloudFormation: a custom resource that never answers holds the stack for
// an hour.
const responseMargin = 5 * time.Second

// Migrator is the handler of the migrate function, a CloudFormation custom
// resource invoked directly by CloudFormation (its service token is the
// function): on Create and Update it runs migrate, which must be
// idempotent; on Delete it does nothing (the cluster's data outlives the
// resource). Whatever happens, the outcome is PUT to the event's response
// URL, in time: migrate is given the invocation's deadline less a margin.
func Migrator(migrate func(context.Context) error, log *slog.Logger) cfn.CustomResourceLambdaFunction {
	if log == nil {
		log = slog.Default()
	}
	return cfn.LambdaWrap(func(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
		if ev.RequestType == cfn.RequestDelete {
			log.Info("schema resource deleted; the database is left as it is", "stack", ev.StackID)
			return ev.PhysicalResourceID, nil, nil
		}
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-responseMargin))
			defer cancel()
		}
		if err := migrate(ctx); err != nil {
			log.Error("schema migration failed", "request", ev.RequestType, "stack", ev.StackID, "err", err)
			// CloudFormation takes a response of 4 KB at most: the reason
			// is cut, the log keeps it whole.
			why := err.Error()
			if len(why) > 1000 {
				why = strings.ToValidUTF8(why[:1000], "") + "… (see the migrate function's log)"
			}
			return SchemaResourceID, nil, fmt.Errorf("infinity schema migration: %s", why)
		}
		log.Info("schema migrated", "request", ev.RequestType, "stack", ev.StackID)
		return SchemaResourceID, nil, nil
	})
}
