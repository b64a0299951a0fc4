package cloud

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// serviceEndpoint resolves the endpoint of a service the functions call
// without an SDK client (Scheduler, Secrets Manager) the way the SDK's
// clients resolve theirs from cfg: unless a configuration source says to
// ignore configured endpoints, AWS_ENDPOINT_URL_<SERVICE> (as a source
// reports it), then cfg.BaseEndpoint (AWS_ENDPOINT_URL); otherwise the
// public endpoint of cfg's region, its FIPS variant when a source asks for
// FIPS endpoints (dual-stack endpoints are not used by these calls). host
// is the service's endpoint prefix.
func serviceEndpoint(cfg aws.Config, sdkID, host string) string {
	ctx := context.Background()
	ignore, fips := false, false
	for _, cs := range cfg.ConfigSources {
		if p, ok := cs.(interface {
			GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error)
		}); ok {
			if v, found, err := p.GetIgnoreConfiguredEndpoints(ctx); err == nil && found {
				ignore = v
			}
		}
		if p, ok := cs.(interface {
			GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error)
		}); ok {
			if v, found, err := p.GetUseFIPSEndpoint(ctx); err == nil && found {
				fips = v == aws.FIPSEndpointStateEnabled
			}
		}
	}
	if !ignore {
		for _, cs := range cfg.ConfigSources {
			if p, ok := cs.(interface {
				GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
			}); ok {
				if v, found, err := p.GetServiceBaseEndpoint(ctx, sdkID); err == nil && found {
					return v
				}
			}
		}
		if cfg.BaseEndpoint != nil {
			return *cfg.BaseEndpoint
		}
	}
	if fips {
		host += "-fips"
	}
	suffix := ".amazonaws.com"
	if strings.HasPrefix(cfg.Region, "cn-") {
		suffix = ".amazonaws.com.cn"
	}
	return "https://" + host + "." + cfg.Region + suffix
}
