package cloudauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AzureOptions configure the azure provider.
type AzureOptions struct {
	// HTTPClient makes the Microsoft Entra ID and managed identity token
	// requests (default: the Azure SDK's) and the registry token exchange
	// (default: http.DefaultClient). The identity itself comes from the
	// environment as azidentity reads it (AZURE_CLIENT_ID, AZURE_TENANT_ID,
	// AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST).
	HTTPClient *http.Client
}

const (
	// azureScope is the audience of the Entra ID token exchanged for a
	// registry token: ACR's own, not Azure Resource Manager's
	// ("https://management.azure.com/.default"). Registries accept both by
	// default, but can be set to accept only ACR-scoped tokens (Microsoft
	// Learn, "Configure registry acceptance of Microsoft Entra
	// authentication scopes": azureADAuthenticationAsArmPolicy disabled, a
	// built-in Azure Policy); the ACR scope works either way and does not
	// hand the registry a token good for managing Azure resources. The
	// audience is the same in every cloud (the Azure CLI's ACR audience
	// token uses it too).
	azureScope = "https://containerregistry.azure.net/.default"
	// azureUser is the user name ACR takes with a refresh token as password.
	azureUser = "00000000-0000-0000-0000-000000000000"
	// azureMaxBody bounds the token exchange response read.
	azureMaxBody = 64 << 10
)

// azureHost is a registry's login server: one DNS label under ACR's
// domain in the public cloud, Azure China or Azure Government.
var azureHost = regexp.MustCompile(`^[a-z0-9-]+\.azurecr\.(io|cn|us)$`)

// azureErrorCode is what an ACR error code looks like (UNAUTHORIZED,
// DENIED, ...): only such codes are quoted in errors, so that nothing the
// registry echoes back ends up in a log.
var azureErrorCode = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// azureProvider gives Azure Container Registry refresh tokens for a
// Microsoft Entra ID token of the pod's identity: AKS workload identity
// (the federated service account token the AKS webhook mounts) or, where
// that is not set up, a managed identity (the user-assigned one
// AZURE_CLIENT_ID names, else the VM's). Not DefaultAzureCredential: it
// may run the Azure CLI or azd, which have no place in an admission
// controller.
//
// The Entra token is exchanged by a small request of our own rather than
// azcontainerregistry's AuthenticationClient: that module is pre-1.0, and
// azcore's response errors quote the whole response body, where ours keep
// to the status and ACR's error code and bound the read.
type azureProvider struct {
	o AzureOptions

	mu   sync.Mutex
	cred azcore.TokenCredential
}

func newAzure(o AzureOptions) *azureProvider { return &azureProvider{o: o} }

func (a *azureProvider) Name() string { return "azure" }

// Handles reports a registry's login server, <name>.azurecr.io, and its
// sovereign clouds' .azurecr.cn and .azurecr.us, on the default port only.
func (a *azureProvider) Handles(host string) bool {
	return azureHost.MatchString(strings.ToLower(host))
}

// Credential exchanges an Entra ID access token for an ACR refresh token,
// which the registry takes as the password of the null GUID user, until the
// expiry it carries.
func (a *azureProvider) Credential(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	cred, err := a.credential()
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azureScope}})
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	refresh, err := a.exchange(ctx, host, tok.Token)
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	return authn.AuthConfig{Username: azureUser, Password: refresh}, jwtExpiry(refresh), nil
}

// credential builds the chain of workload identity then managed identity
// once it builds (a failure is tried again on the next call).
func (a *azureProvider) credential() (azcore.TokenCredential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cred != nil {
		return a.cred, nil
	}
	var co azcore.ClientOptions
	if a.o.HTTPClient != nil {
		co.Transport = a.o.HTTPClient
	}
	var sources []azcore.TokenCredential
	wi, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: co,
		// An authority host named in the pod's environment is the one to
		// use: instance discovery would validate it against
		// login.microsoftonline.com, which knows neither private clouds
		// nor stand-ins (and skips Microsoft's own clouds anyway).
		DisableInstanceDiscovery: os.Getenv("AZURE_AUTHORITY_HOST") != "",
	})
	switch {
	case err == nil:
		sources = append(sources, wi)
	case os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "":
		// The pod is set up for workload identity: falling back to
		// another identity would hide the mistake.
		return nil, fmt.Errorf("workload identity: %w", err)
	}
	mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
	// As DefaultAzureCredential does: AZURE_CLIENT_ID names a
	// user-assigned identity, not whatever identity the node has.
	if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
		mo.ID = azidentity.ClientID(id)
	}
	mi, err := azidentity.NewManagedIdentityCredential(mo)
	if err != nil {
		return nil, fmt.Errorf("managed identity: %w", err)
	}
	sources = append(sources, mi)
	chain, err := azidentity.NewChainedTokenCredential(sources, nil)
	if err != nil {
		return nil, err
	}
	a.cred = chain
	return chain, nil
}

// exchange trades an Entra ID access token for a refresh token of the
// registry at host (ACR's POST /oauth2/exchange).
func (a *azureProvider) exchange(ctx context.Context, host, accessToken string) (string, error) {
	form := url.Values{
		"grant_type":   {"access_token"},
		"service":      {host},
		"access_token": {accessToken},
	}
	// The tenant is optional in ACR's exchange API (the Azure SDKs'
	// parameter is): a managed identity outside AKS may not name one.
	if tenant := os.Getenv("AZURE_TENANT_ID"); tenant != "" {
		form.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+"/oauth2/exchange", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := a.o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("registry token exchange: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, azureMaxBody))
	if err != nil {
		return "", fmt.Errorf("registry token exchange: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("registry token exchange: HTTP %d %s%s", resp.StatusCode, http.StatusText(resp.StatusCode), acrErrorCodes(body))
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.RefreshToken == "" {
		return "", errors.New("registry token exchange: no refresh token in the response")
	}
	return out.RefreshToken, nil
}

// acrErrorCodes returns the codes of an ACR error body ({"errors": [{"code":
// ...}]}) as ": CODE, ...", or nothing.
func acrErrorCodes(body []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var codes []string
	for _, x := range e.Errors {
		if azureErrorCode.MatchString(x.Code) {
			codes = append(codes, x.Code)
		}
	}
	if len(codes) == 0 {
		return ""
	}
	return ": " + strings.Join(codes, ", ")
}

// jwtExpiry returns the exp claim of a JWT, read without verifying it (the
// registry that issued it is the one to check it), or the zero time when
// it has none.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(claims.Exp), 0)
}
