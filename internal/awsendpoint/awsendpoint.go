// Package awsendpoint resolves the endpoint of an AWS service that is
// called without the SDK's client for it (Bedrock Runtime's streaming,
// SQS's SendMessage, EventBridge Scheduler, Secrets Manager), the way the
// SDK's clients resolve theirs from an aws.Config.
package awsendpoint

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	infinity "github.com/infinity-runtime/infinity"
)

// Resolve returns the endpoint of the service whose SDK id is sdkID
// ("Bedrock Runtime") and whose endpoint prefix is host
// ("bedrock-runtime"), from cfg, as the SDK's client does: the service
// endpoint a configuration source reports (AWS_ENDPOINT_URL_<SERVICE>, a
// profile's services section) unless configured endpoints are ignored or
// only AWS_ENDPOINT_URL is set, else cfg.BaseEndpoint (AWS_ENDPOINT_URL);
// otherwise the regional endpoint of the region's partition, its FIPS or
// dual-stack variant when a source asks for one (which a configured
// endpoint does not allow). Its errors wrap infinity.ErrInvalid. Rules
// some services' SDK clients add are not followed: SQS's FIPS endpoints
// in GovCloud regions, and FIPS pseudo-regions ("fips-us-east-1").
func Resolve(cfg *aws.Config, sdkID, host string) (*url.URL, error) {
	ctx := context.Background()
	var (
		base            string
		ignore, ignored bool
		fips, fipsSet   bool
		dual, dualSet   bool
	)
	if cfg.BaseEndpoint != nil {
		base = *cfg.BaseEndpoint
	}
	for _, cs := range cfg.ConfigSources {
		if p, ok := cs.(interface {
			GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error)
		}); ok && !ignored {
			if v, found, err := p.GetIgnoreConfiguredEndpoints(ctx); err == nil && found {
				ignore, ignored = v, true
			}
		}
		if p, ok := cs.(interface {
			GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error)
		}); ok && !fipsSet {
			if v, found, err := p.GetUseFIPSEndpoint(ctx); err == nil && found {
				fips, fipsSet = v == aws.FIPSEndpointStateEnabled, true
			}
		}
		if p, ok := cs.(interface {
			GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error)
		}); ok && !dualSet {
			if v, found, err := p.GetUseDualStackEndpoint(ctx); err == nil && found {
				dual, dualSet = v == aws.DualStackEndpointStateEnabled, true
			}
		}
	}
	_, global := os.LookupEnv("AWS_ENDPOINT_URL")
	_, own := os.LookupEnv(EnvName(sdkID))
	if !ignore && (!global || own) {
		for _, cs := range cfg.ConfigSources {
			p, ok := cs.(interface {
				GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
			})
			if !ok {
				continue
			}
			if v, found, err := p.GetServiceBaseEndpoint(ctx, sdkID); err == nil && found {
				base = v
				break
			}
		}
	}
	if !validRegion(cfg.Region) {
		return nil, invalidf("the AWS region %q is not valid (set AWS_REGION, or the region of the AWS configuration)", cfg.Region)
	}
	if base != "" {
		if fips || dual {
			return nil, invalidf("a configured endpoint (%s) cannot be used with FIPS or dual-stack endpoints", base)
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, invalidf("the configured endpoint %q is not an http(s) URL", base)
		}
		return u, nil
	}
	if fips {
		host += "-fips"
	}
	suffix, dualSuffix := partition(cfg.Region)
	if dual {
		suffix = dualSuffix
	}
	return &url.URL{Scheme: "https", Host: host + "." + cfg.Region + "." + suffix}, nil
}

// EnvName is the environment variable of a service's endpoint:
// AWS_ENDPOINT_URL_ and its SDK id in upper case, spaces as underscores.
func EnvName(sdkID string) string {
	return "AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_"))
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, infinity.ErrInvalid)...)
}

// partition returns the DNS suffixes (regional and dual-stack) of the
// region's partition.
func partition(region string) (dns, dualStack string) {
	for _, p := range []struct{ prefix, dns, dual string }{
		{"cn-", "amazonaws.com.cn", "api.amazonwebservices.com.cn"},
		{"eusc-", "amazonaws.eu", "api.amazonwebservices.eu"},
		{"us-iso-", "c2s.ic.gov", "api.aws.ic.gov"},
		{"us-isob-", "sc2s.sgov.gov", "api.aws.scloud"},
		{"eu-isoe-", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"},
		{"us-isof-", "csp.hci.ic.gov", "api.aws.hci.ic.gov"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.dns, p.dual
		}
	}
	return "amazonaws.com", "api.aws"
}

// validRegion reports whether region can be part of a host name: labels
// of letters, digits and hyphens, separated by dots, as the SDK checks.
func validRegion(region string) bool {
	if region == "" {
		return false
	}
	for _, label := range strings.Split(region, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
