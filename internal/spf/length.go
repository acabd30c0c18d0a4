package spf

// Length facts, RFC 7208 §3.3 and §3.4.
const (
	// MaxTXTString is the longest character-string of a TXT record
	// (RFC 1035 §3.3): a longer record must be published as several
	// strings, which receivers concatenate (RFC 7208 §3.3).
	MaxTXTString = 255
	// MaxUDPAnswer is the size above which, by the guideline of
	// RFC 7208 §3.4, the DNS answer may not fit in 512-octet UDP.
	MaxUDPAnswer = 450
)

// LengthInfo describes the length of a record.
type LengthInfo struct {
	Bytes int // the record's length
	// NeedsSplit: longer than 255 bytes, so it must be published as
	// several character-strings of at most 255 bytes (RFC 7208 §3.3).
	NeedsSplit bool
	// RisksUDP: longer than 450 bytes (RFC 7208 §3.4): the answer may not
	// fit in 512-octet UDP and some receivers may then ignore it.
	RisksUDP bool
}

// IsTooLong reports the length facts of one record. The §3.4 guideline
// is about the whole answer, the name and every TXT record at it; see
// AnswerSize.
func IsTooLong(txt string) LengthInfo {
	return LengthInfo{Bytes: len(txt), NeedsSplit: len(txt) > MaxTXTString, RisksUDP: len(txt) > MaxUDPAnswer}
}

// AnswerSize is the RFC 7208 §3.4 measure of a TXT answer: "the combined
// length of the DNS name and the text of all the records of a given
// type". Above MaxUDPAnswer the answer may not fit in UDP.
func AnswerSize(name string, txts []string) int {
	n := len(name)
	for _, t := range txts {
		n += len(t)
	}
	return n
}
