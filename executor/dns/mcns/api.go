package mcns

// What mcp assumes about the MCNS REST API, in one place. The platform
// notes give only the verbs, the path, the body's four fields and the
// bearer token; everything else here is an assumption, and the stand-in
// (mcnsstandin) implements exactly this. If the real server differs,
// correct it here and in the stand-in, and the contract suite shows
// whether the driver still behaves.
//
//	GET    /v1/zones/{zone}/records?name={name}
//	       200, a JSON array of records. The name filter is assumed but not
//	       relied on: the driver filters the answer itself. An object
//	       {"records": [...]} is accepted as well.
//	POST   /v1/zones/{zone}/records      body: one record
//	       200 or 201: the record was added next to the name's other
//	       values (a name holds one A record per node address).
//	       409: it already exists, which the driver treats as done.
//	PUT    /v1/zones/{zone}/records      body: one record
//	       200 or 204: the record with that name, type and value now has
//	       the body's ttl. 404: there is no such record.
//	DELETE /v1/zones/{zone}/records      body: one record (ttl ignored)
//	       200 or 204: removed; 404: there was no such record (done too).
//
// A record is {"name", "type", "value", "ttl"}: name fully qualified
// without the trailing dot (a name the server returns without the zone is
// taken as relative to it, "@" as the apex), type upper case, value as in
// a zone file (addresses, a host name for CNAME, the text for TXT), ttl in
// seconds. {zone} is the zone's name without the trailing dot.
//
// Every request carries "Authorization: Bearer <token>". 401 and 403 mean
// the token is refused; 400, 404 (on the zone) and 422 mean the server
// refused the change; all wrap dns.ErrRefused. A transport failure, a
// timeout, and 502, 503 and 504 wrap dns.ErrUnreachable. An error body
// {"error": "..."} (or plain text) is quoted in the error.
//
// PLATFORM.md lists A, AAAA and CNAME as MCNS's record types; TXT, which
// ACME DNS-01 needs, is assumed to be accepted too.

const (
	// recordsPath is the collection, with the zone in the middle.
	recordsPathPrefix = "/v1/zones/"
	recordsPathSuffix = "/records"
	// nameParam filters GET by owner name.
	nameParam = "name"
)

// wireRecord is a record as the API encodes it.
type wireRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	TTL   int    `json:"ttl"`
}

// errorBody is the error document the API is assumed to send.
type errorBody struct {
	Error string `json:"error"`
}
