package tlsrpt

import "time"

// Report is a TLS-RPT aggregate report (RFC 8460 §4.3), normalized: every
// real-world variant the decoder accepts is brought into this one shape.
// JSON tags are those of the RFC, so a normalized report marshals back to
// RFC form.
type Report struct {
	OrganizationName string         `json:"organization-name"`
	DateRange        DateRange      `json:"date-range"`
	ContactInfo      string         `json:"contact-info"`
	ReportID         string         `json:"report-id"`
	Policies         []PolicyResult `json:"policies"`
}

// DateRange is the report period, in UTC.
type DateRange struct {
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is the outcome of the sessions under one policy.
type PolicyResult struct {
	Policy         Policy          `json:"policy"`
	Summary        Summary         `json:"summary"`
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// Policy types of RFC 8460 §4.3. Others seen in the wild are kept as
// written (lower-cased) with a warning.
const (
	PolicyTLSA     = "tlsa"
	PolicySTS      = "sts"
	PolicyNoPolicy = "no-policy-found"
)

// Policy is the policy the sender applied.
type Policy struct {
	Type   string   `json:"policy-type"`
	String []string `json:"policy-string,omitempty"`
	Domain string   `json:"policy-domain"` // lower-case, no trailing dot
	MXHost []string `json:"mx-host,omitempty"`
}

// Summary counts the sessions under a policy.
type Summary struct {
	Successful int64 `json:"total-successful-session-count"`
	Failure    int64 `json:"total-failure-session-count"`
}

// Result types of RFC 8460 §4.3 (and "success", used by Moat for the
// successful sessions of a summary). Others are kept as written
// (lower-cased) with a warning.
const (
	ResultSuccess                 = "success"
	ResultSTARTTLSNotSupported    = "starttls-not-supported"
	ResultCertificateHostMismatch = "certificate-host-mismatch"
	ResultCertificateExpired      = "certificate-expired"
	ResultCertificateNotTrusted   = "certificate-not-trusted"
	ResultValidationFailure       = "validation-failure"
	ResultTLSAInvalid             = "tlsa-invalid"
	ResultDNSSECInvalid           = "dnssec-invalid"
	ResultDANERequired            = "dane-required"
	ResultSTSPolicyFetchError     = "sts-policy-fetch-error"
	ResultSTSPolicyInvalid        = "sts-policy-invalid"
	ResultSTSWebPKIInvalid        = "sts-webpki-invalid"
	// ResultUnspecified is Moat's name for failed sessions a report counts
	// in its summary but does not detail.
	ResultUnspecified = "unspecified"
	// ResultDetailExcess is Moat's rollup entry for failed sessions a
	// report details beyond its total-failure-session-count (Mail.ru): the
	// details are counted per result type, and this entry is subtracted
	// so that totals equal the reports' totals.
	ResultDetailExcess = "detail-excess"
)

// FailureDetail describes failed sessions of one kind.
type FailureDetail struct {
	ResultType            string `json:"result-type"`
	SendingMTAIP          string `json:"sending-mta-ip,omitempty"`
	ReceivingMXHostname   string `json:"receiving-mx-hostname,omitempty"`
	ReceivingMXHelo       string `json:"receiving-mx-helo,omitempty"`
	ReceivingIP           string `json:"receiving-ip,omitempty"`
	FailedSessionCount    int64  `json:"failed-session-count"`
	AdditionalInformation string `json:"additional-information,omitempty"`
	FailureReasonCode     string `json:"failure-reason-code,omitempty"`
}

// Warning is one deviation from RFC 8460 that the tolerant decoder
// accepted. Path locates it in the JSON ("policies[0].policy.mx-host").
type Warning struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Path + ": " + w.Message }
