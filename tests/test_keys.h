/*
 * test_keys — the RSA 2048 and P-256 key pairs the auth unit tests and the token fuzz harness
 * sign and verify with (openssl genpkey / ecparam, made once for these tests). Test-only keys:
 * never use them anywhere else. Included by tests/unit/test_auth.c and tests/fuzz/fuzz_token.c,
 * each of which uses all four.
 */
#ifndef CHAT_TEST_KEYS_H
#define CHAT_TEST_KEYS_H

static const char RSA_PRIVATE_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDAsUpEYYD7fC/Y\n"
    "WDvRST2Eb5QNGMXZVbjzKgA8bbqyxnouAyGfs492cPJHX85nyo9q2mUjgBovlDSY\n"
    "OAx49Mjflgmg6+1Paa/sGMPG4/RxJCapu07kPRGzEkZ0l0sAUG/4jv8I+sY6RFnd\n"
    "PEpuYDGh7X+/jhFHcaLTS9vtY9Ff42Y//h1AST1YYEpIA1IF1wXWHLNJWCxSsLcY\n"
    "a780ZQxwdQR2jyXv7ObEPxFZf93fYt8qkNium61SwsvmDeZt6u6g+rmd0fIUJ4uI\n"
    "cjwyTV3+QZAAfZKHFOkAR1XabwMEUOSQI3lFtTPKDGIFAocVLSPik/TE7xWHwDeq\n"
    "AqI2J/gvAgMBAAECggEAV6YtTIZ3h605DDUyXGPuvheM5hovIMlr2/vuaI5XHqvG\n"
    "driI6l5gcvU0V3/+YNrUOrwFxkymXJ8S/2x7S+e4mW9jiNXYN8ewtHmdUBJvpalW\n"
    "ht1DKPGYY/Z7otwQyx9Ll2ngG0MKuQVPRSGAD83kta3U7pqeRHutn2RBsS0212DL\n"
    "tCmAblEvsKWQE/hKDL5unM8G/eTSzAtYgzvIk6/Vfrx4F6ABY8HDra7hMYiEMkGP\n"
    "s23cTM7oMrr1kp/AQUg+i4dOJ7JffhvNiU4k9Re8uB8jT1pwXd08botlgO+n/4hn\n"
    "Yl95ag+ZyDvjXZqPI4+0YWZA/EAzlBrw9Id4dsiCRQKBgQDskAzwqnFIOc7+zGaB\n"
    "iSt+1I114D87vp3WJB67Zstfw9X8p9UlDBD3wwJsQOOD3jiiBbXPTlxRwaUqo5P/\n"
    "0MEcdR1LegKl3f96P+zTUN2hVtAlD2LiDBAGqN5JzDAA+JQSSDKgEnkIeHhAjgc7\n"
    "hGd+01p3N2YbkFHqaSBscaDBMwKBgQDQhnVBLg2Yb2MrRl3NiXCeKRHc6rllowcc\n"
    "/mFPFh1UQG9p8hBJe6BFn7dCaI8uOQVLorXYnT9hDIFIKJYNTPj58CXyS0p41S/1\n"
    "UAeH3NCPJ2zJC2kAfQgwFRcG1xLoNEatsymIVtWvuBUyZkiiALQx/3cYLBPLzSZW\n"
    "XF+EB0VlFQKBgQCxpKLy/ys+b5rPoDLBx34QKhFomVMizEu+iTVCyTij224P4wCe\n"
    "Z2c+hwSEwl2XowKoON2EpXWSN3aOhHQZQGwjsJalHSRr5j95UBPJxAoKpCR+EAXT\n"
    "dfd66Mi0Zk8OC5019V1+8yBMihrTb1RjD1Sg2pouuD1HKaM6AmPEy7dKHQKBgHq3\n"
    "Jjn9iDK1Gn9VIc7bm1L4iHKiEAkoL/94FHweX5Q9d1O6CKu1/VP78jU6o0hodh1U\n"
    "2/9mSu4qFcsJV4TsT3mHQk2c0W7axyZuun/SC0qzwOlvtZN8AV2Ki8qSt6W/XfjK\n"
    "/x4lPAv1IURPvV7ZWzIxTT0Ec4H0cSNRqURhow0hAoGBAOuH2lsqzcXB3xn1uNoN\n"
    "NSK0rwaJc24P88R7UtPhvGAsUSDkKq6NwgmGX03kIildSpqxcRVh+pEBs3/q9YNY\n"
    "wl5kLRNDoEynb59yViHpqYnnnbqwGrKuEaoNmi/6wqJilP/izxL45tFcHzvKVI2C\n"
    "I5SgYtKTYSVnA7jvUSs9mQaM\n"
    "-----END PRIVATE KEY-----\n";

static const char RSA_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwLFKRGGA+3wv2Fg70Uk9\n"
    "hG+UDRjF2VW48yoAPG26ssZ6LgMhn7OPdnDyR1/OZ8qPatplI4AaL5Q0mDgMePTI\n"
    "35YJoOvtT2mv7BjDxuP0cSQmqbtO5D0RsxJGdJdLAFBv+I7/CPrGOkRZ3TxKbmAx\n"
    "oe1/v44RR3Gi00vb7WPRX+NmP/4dQEk9WGBKSANSBdcF1hyzSVgsUrC3GGu/NGUM\n"
    "cHUEdo8l7+zmxD8RWX/d32LfKpDYrputUsLL5g3mberuoPq5ndHyFCeLiHI8Mk1d\n"
    "/kGQAH2ShxTpAEdV2m8DBFDkkCN5RbUzygxiBQKHFS0j4pP0xO8Vh8A3qgKiNif4\n"
    "LwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char EC_PRIVATE_PEM[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIHpOC3BxxIaVxN7MqE0gaSUp3rns0lVzLxwxTFB7WTGboAoGCCqGSM49\n"
    "AwEHoUQDQgAEDlTzmYq47z9mpJ//0crfXUm28tWcoOzR0aUVmCk62pV3TdDOlDz4\n"
    "zsbKzBdwfHv9NJw8R3O5igOU4jUzJX4rFg==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char EC_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDlTzmYq47z9mpJ//0crfXUm28tWc\n"
    "oOzR0aUVmCk62pV3TdDOlDz4zsbKzBdwfHv9NJw8R3O5igOU4jUzJX4rFg==\n"
    "-----END PUBLIC KEY-----\n";

#endif
