/* SPDX-License-Identifier: MIT */
/*
 * The Host header allow-list of ptescoped's HTTP server, against DNS
 * rebinding: a web page the admin opens can point a name of its own at
 * 127.0.0.1 and have the browser read the API (every process's name, pid
 * and memory) as that name's origin. The request then carries the page's
 * name in Host, which no honest client sends, so it is refused (421).
 *
 * Allowed: the loopback names (localhost, ip6-localhost, ip6-loopback, in
 * any case, with or without a final dot), loopback addresses (127.0.0.0/8,
 * ::1, ::ffff:127.x), the listen address, every address literal when the
 * server listens on all addresses (an address cannot be rebound), the names
 * configured (--allowed-hosts: a reverse proxy's or a scraper's name), and no
 * Host at all (HTTP/1.0; libmicrohttpd refuses HTTP/1.1 without one). The
 * port is not compared. Fed by the request handler (http_route.c) on the first
 * call of every request, before any other check.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "http_internal.h"

#define HOST_MAX 256

/*
 * The host part of a Host header value into @out (lowercase, brackets and a
 * final dot dropped), the port cut off. False when it does not parse.
 */
static bool host_part(const char *v, char *out, size_t outlen)
{
	const char *end, *colon;
	size_t n;

	if (v[0] == '[') {
		end = strchr(v, ']');
		if (!end ||
		    (end[1] && (end[1] != ':' || strspn(end + 2, "0123456789") != strlen(end + 2))))
			return false;
		v++;
	} else {
		colon = strrchr(v, ':');
		end = colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)
			  ? colon
			  : v + strlen(v);
		if (colon && end != colon)
			return false; /* a colon that starts no port: not a host */
	}
	n = (size_t)(end - v);
	if (n && v[n - 1] == '.' && v[-1] != '[')
		n--;
	if (!n || n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
	out[n] = 0;
	return true;
}

static bool is_loopback_name(const char *host)
{
	return !strcmp(host, "localhost") || !strcmp(host, "ip6-localhost") ||
	       !strcmp(host, "ip6-loopback");
}

/* An address literal: 1 allowed, 0 refused, -1 not an address. */
static int address_allowed(const struct pd_http *h, const char *host)
{
	const struct sockaddr_in *l4 = (const struct sockaddr_in *)&h->listen_addr;
	const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&h->listen_addr;
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1) {
		if ((ntohl(a4.s_addr) >> 24) == 127)
			return 1;
		if (h->listen_addr.ss_family == AF_INET)
			return l4->sin_addr.s_addr == INADDR_ANY ||
			       l4->sin_addr.s_addr == a4.s_addr;
		return h->listen_addr.ss_family == AF_INET6 &&
		       IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr);
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127))
			return 1;
		if (h->listen_addr.ss_family == AF_INET6)
			return IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr) ||
			       !memcmp(&l6->sin6_addr, &a6, sizeof(a6));
		return h->listen_addr.ss_family == AF_INET && l4->sin_addr.s_addr == INADDR_ANY;
	}
	return -1;
}

/* Whether @host is one of the configured names (comma-separated, any case). */
static bool configured(const struct pd_http *h, const char *host)
{
	size_t n = strlen(host);

	for (const char *p = h->allowed_hosts; p && *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncasecmp(p, host, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

bool pd_http_host_allowed(const struct pd_http *h, struct MHD_Connection *c, char *shown,
			  size_t shownlen)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char host[HOST_MAX];
	int a;

	if (!v)
		return true;
	snprintf(shown, shownlen, "%s", v);
	if (!host_part(v, host, sizeof(host)))
		return false;
	if (is_loopback_name(host))
		return true;
	a = address_allowed(h, host);
	if (a >= 0)
		return a == 1;
	return configured(h, host);
}
