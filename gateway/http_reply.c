/*
 * http_reply — writing a plain HTTP answer (status, JSON body, no-store, Connection: close) and
 * measuring a request's head, for every module that answers HTTP (http.c, api.c, handshake.c).
 * The framing is libwebsockets'; nothing here parses or writes HTTP by hand.
 */
#include "http_reply.h"

#include "protocol.h"

#include <cjson/cJSON.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int http_respond(struct lws *wsi, unsigned status, const char *content_type, const char *body,
                 size_t len)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len == 0)
        return 0;
    /* lws_write needs LWS_PRE headroom before the body even for HTTP. */
    unsigned char *out = malloc(LWS_PRE + len);
    if (!out)
        return -1;
    memcpy(out + LWS_PRE, body, len);
    int n = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    free(out);
    return n < (int)len ? -1 : 0;
}

int http_error(struct lws *wsi, unsigned status, const char *error, const char *message)
{
    char *body = proto_encode_http_error(error, message);
    int rc = body ? http_respond(wsi, status, "application/json", body, strlen(body))
                  : http_respond(wsi, status, "application/json", "{}", 2);
    free(body);
    return rc;
}

size_t http_header_bytes(struct lws *wsi, unsigned long long declared_body)
{
    /* lws 4.1 offers no way to ask how much header space a request used: known headers can be
     * summed, but unknown (custom) ones cannot be enumerated. The kernel can tell how many
     * bytes the peer has sent on this connection (which carries one request, http.h): at the
     * end of the headers that is the request head plus whatever part of the body already
     * arrived, so head ≈ received − min(declared body, received). It can overestimate only
     * when the client pipelined further requests, which we would not serve anyway. The sum
     * of known headers is a floor when TCP_INFO is unavailable. */
    size_t known = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (n > 0)
            known += (size_t)n + 4; /* ": " and CRLF */
    }
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return known;
    unsigned long long got = ti.tcpi_bytes_received;
    size_t head = (size_t)(got - (declared_body < got ? declared_body : got));
    return head > known ? head : known;
}
