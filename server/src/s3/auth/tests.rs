//! Signatures checked against AWS's published examples and against keel's own client signer.

use super::canonical::push_collapsed;
use super::sigv4::amz_stamp;
use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn sign(method: &str, path: &str, query: &str, headers: &[(&str, &str)], signed: &str, payload: &str) -> String {
    let creq = canonical_request(
        method,
        path,
        query,
        signed,
        |n| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()),
        payload,
        false,
    )
    .unwrap();
    let sts = string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", &creq);
    hex::encode(hmac(&signing_key(SECRET, "20130524", "us-east-1", "s3"), sts.as_bytes()))
}

// The examples of AWS's "Signature Calculations for the Authorization Header" page for S3.
#[test]
fn aws_published_vectors() {
    let host = ("host", "examplebucket.s3.amazonaws.com");
    let date = ("x-amz-date", "20130524T000000Z");
    let empty = ("x-amz-content-sha256", EMPTY_SHA256);
    assert_eq!(
        sign(
            "GET",
            "/test.txt",
            "",
            &[host, ("range", "bytes=0-9"), empty, date],
            "host;range;x-amz-content-sha256;x-amz-date",
            EMPTY_SHA256
        ),
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    let put_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    assert_eq!(
        sign(
            "PUT",
            "/test%24file.text",
            "",
            &[
                host,
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-content-sha256", put_hash),
                date,
                ("x-amz-storage-class", "REDUCED_REDUNDANCY")
            ],
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            put_hash
        ),
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
    assert_eq!(
        sign("GET", "/", "lifecycle", &[host, empty, date], "host;x-amz-content-sha256;x-amz-date", EMPTY_SHA256),
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
    assert_eq!(
        sign(
            "GET",
            "/",
            "max-keys=2&prefix=J",
            &[host, empty, date],
            "host;x-amz-content-sha256;x-amz-date",
            EMPTY_SHA256
        ),
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}

#[test]
fn header_parsing() {
    for sep in [", ", ","] {
        let v = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request{sep}SignedHeaders=host;x-amz-date{sep}Signature=abc"
        );
        let h = parse_v4_header(&v).unwrap();
        assert_eq!(
            (h.access_key, h.region, h.signed_headers, h.signature),
            ("AK", "us-east-1", "host;x-amz-date", "abc")
        );
    }
    assert!(
        parse_v4_header("AWS4-HMAC-SHA256 Credential=AK/2013/us/s3/aws4_request, SignedHeaders=h, Signature=x")
            .is_err()
    );
    assert!(parse_v4_header("AWS4-HMAC-SHA256 Credential=AK/20130524/us/s3/aws4_request, Signature=x").is_err());
    assert!(parse_v4_header("AWS4-HMAC-SHA256 Bogus=1").is_err());
}

#[test]
fn canonical_query_sorts_and_reencodes() {
    assert_eq!(
        canonical_query("prefix=a%2Fb&list-type=2&encoding-type=url&delimiter=%2F", false),
        "delimiter=%2F&encoding-type=url&list-type=2&prefix=a%2Fb"
    );
    assert_eq!(canonical_query("uploads", false), "uploads=");
    assert_eq!(canonical_query("a=b c&a=a", false), "a=a&a=b%20c");
    assert_eq!(canonical_query("X-Amz-Signature=1&x=2", true), "x=2");
}

#[test]
fn collapses_spaces_and_compares_in_constant_time() {
    let mut s = String::new();
    push_collapsed(&mut s, "  a   b \t c ");
    assert_eq!(s, "a b c");
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
    assert_eq!(amz_stamp(1_369_353_600), "20130524T000000Z");
    // The no-copy path (single spaces only) agrees with collapsing char by char.
    for v in ["a b c", " a b ", "a\tb", "a  b", "\ta b\t", "x", "", "  ", "é ü  ß", "a \t b"] {
        let mut fast = String::new();
        push_collapsed(&mut fast, v);
        let slow: Vec<&str> = v.split([' ', '\t']).filter(|p| !p.is_empty()).collect();
        assert_eq!(fast, slow.join(" "), "{v:?}");
    }
}

#[test]
fn unsorted_or_uppercase_signed_headers_keep_their_meaning() {
    let headers = [("host", "h"), ("x-amz-date", "d")];
    let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    let sorted = canonical_request("GET", "/", "", "host;x-amz-date", get, "p", false).unwrap();
    let unsorted = canonical_request("GET", "/", "", "x-amz-date;host", get, "p", false).unwrap();
    assert_eq!(sorted, unsorted);
    assert!(sorted.ends_with("\n\nhost;x-amz-date\np"), "{sorted}");
    let gaps = canonical_request("GET", "/", "", ";host;;x-amz-date;", get, "p", false).unwrap();
    assert_eq!(gaps, sorted, "empty names are dropped from the list");
    let upper = canonical_request("GET", "/", "", "Host;x-amz-date", get, "p", false).unwrap();
    assert!(upper.contains("host:h\n"), "{upper}");
}
