package cloudauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AWSOptions configure the aws provider.
type AWSOptions struct {
	// HTTPClient makes the STS, IMDS and ECR requests (default: the
	// SDK's). Endpoints come from the SDK's own settings
	// (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS, ...).
	HTTPClient *http.Client
}

// awsRegion matches the name of an AWS region (us-east-1, us-gov-west-1, ...).
const awsRegion = `([a-z]+(?:-[a-z]+)+-[0-9]+)`

// ecrHost matches the hosts of private ECR registries, the region as one of
// its groups: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and the
// dual-stack <account>.dkr-ecr[-fips].<region>.on.aws and
// <account>.dkr-ecr.<region>.on.amazonwebservices.com.cn. Public ECR
// (public.ecr.aws) is pulled anonymously.
var ecrHost = regexp.MustCompile(`^[0-9]{12}\.(?:` +
	`dkr\.ecr(?:-fips)?\.` + awsRegion + `\.amazonaws\.com(?:\.cn)?|` +
	`dkr-ecr(?:-fips)?\.` + awsRegion + `\.on\.aws|` +
	`dkr-ecr\.` + awsRegion + `\.on\.amazonwebservices\.com\.cn)$`)

// awsProvider gives ECR authorization tokens for the identity of the
// SDK's default credential chain: IRSA (AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE), EKS Pod Identity
// (AWS_CONTAINER_CREDENTIALS_FULL_URI), environment variables, shared
// configuration files, or the instance role from IMDS. It calls the SDK
// rather than amazon-ecr-credential-helper, which caches tokens in files
// under $HOME: the pod's file system may be read-only, and the Keychain
// already keeps tokens in memory.
type awsProvider struct {
	o AWSOptions

	mu      sync.Mutex
	cfg     *aws.Config
	clients map[string]*ecr.Client // by region
}

func newAWS(o AWSOptions) *awsProvider {
	return &awsProvider{o: o, clients: map[string]*ecr.Client{}}
}

func (a *awsProvider) Name() string { return "aws" }

// Handles reports private ECR registry hosts, on the default port only.
func (a *awsProvider) Handles(host string) bool { return ecrHost.MatchString(host) }

// region returns the region of the ECR registry host, if it is one.
func (a *awsProvider) region(host string) (string, bool) {
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", false
	}
	for _, r := range m[1:] {
		if r != "" {
			return r, true
		}
	}
	return "", false
}

// Credential returns the user and password of an authorization token from
// ECR in the host's region (a registry's tokens are issued by its own
// region).
func (a *awsProvider) Credential(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	region, ok := a.region(host)
	if !ok {
		return authn.AuthConfig{}, time.Time{}, fmt.Errorf("%s is not an ECR registry", host)
	}
	c, err := a.client(ctx, region)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return authn.AuthConfig{}, time.Time{}, errors.New("ECR returned no authorization token")
	}
	d := out.AuthorizationData[0]
	// The token is base64 of user:password; neither it nor the decoding
	// error goes into the error.
	raw, err := base64.StdEncoding.DecodeString(*d.AuthorizationToken)
	user, password, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || user == "" {
		return authn.AuthConfig{}, time.Time{}, errors.New("ECR returned a malformed authorization token")
	}
	var expires time.Time
	if d.ExpiresAt != nil {
		expires = *d.ExpiresAt
	}
	return authn.AuthConfig{Username: user, Password: password}, expires, nil
}

// client returns the ECR client of region, loading the AWS configuration
// once it loads (a failure is tried again on the next call). The clients
// share the configuration's credential cache.
func (a *awsProvider) client(ctx context.Context, region string) (*ecr.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[region]; ok {
		return c, nil
	}
	if a.cfg == nil {
		var opts []func(*config.LoadOptions) error
		if a.o.HTTPClient != nil {
			opts = append(opts, config.WithHTTPClient(a.o.HTTPClient))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		a.cfg = &cfg
	}
	// Hosts name regions freely (pod specs choose them): bounded as the
	// keychain's credentials are.
	if len(a.clients) >= maxHosts {
		a.clients = map[string]*ecr.Client{}
	}
	c := ecr.NewFromConfig(*a.cfg, func(o *ecr.Options) { o.Region = region })
	a.clients[region] = c
	return c, nil
}
