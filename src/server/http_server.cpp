#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <utility>

namespace ponder::server {

using nlohmann::json;

ApiError::ApiError(int status, std::string message, std::string type, std::string param, std::string code)
    : std::runtime_error(std::move(message)),
      status_(status),
      type_(std::move(type)),
      param_(std::move(param)),
      code_(std::move(code)) {}

json ApiError::body() const {
  return {{"error",
           {{"message", what()},
            {"type", type_},
            {"param", param_.empty() ? json(nullptr) : json(param_)},
            {"code", code_.empty() ? json(nullptr) : json(code_)}}}};
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

namespace {

// The OpenAI error body for a status that no handler described (404, 413, ...).
json error_body(int status, const std::string& message) {
  return ApiError(status, message, status >= 500 ? "server_error" : "invalid_request_error").body();
}

}  // namespace

json parse_json_object(const httplib::Request& req) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return body;
}

HttpServer::HttpServer(HttpOptions options) : options_(std::move(options)) {
  const size_t threads = static_cast<size_t>(std::max(1, options_.threads));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(options_.max_body);
  // One request per connection: an idle keep-alive connection would hold a pool thread (and
  // delay stop() by the keep-alive timeout); a search costs far more than a new connection.
  http_.set_keep_alive_max_count(1);
  // Errors cpp-httplib answers itself (no route, body too large, a malformed request) get the
  // same JSON body as the handlers' errors.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const char* what = res.status == 404   ? "no such route"
                       : res.status == 405 ? "method not allowed"
                       : res.status == 413 ? "the request body is too large"
                       : res.status < 500  ? "malformed request"
                                           : "internal error";
    send_json(res, res.status, error_body(res.status, what));
    return httplib::Server::HandlerResponse::Handled;
  }));
}

HttpServer::~HttpServer() = default;

bool HttpServer::authorized(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  const std::string expected = "Bearer " + options_.api_key;
  const std::string given = req.get_header_value("Authorization");
  // Compared in time independent of where they differ.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size() && i < expected.size(); ++i) diff |= given[i] ^ expected[i];
  return diff == 0;
}

HttpServer::Handler HttpServer::wrap(Handler handler, Access access) {
  return [this, handler = std::move(handler), access](const httplib::Request& req, httplib::Response& res) {
    try {
      if (access == Access::kKey && !authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        throw ApiError(401, "a valid API key is needed (Authorization: Bearer KEY)", "invalid_request_error", "",
                       "invalid_api_key");
      }
      handler(req, res);
    } catch (const ApiError& e) {
      send_json(res, e.status(), e.body());
    } catch (const std::exception& e) {
      send_json(res, 500, ApiError(500, e.what(), "server_error").body());
    }
  };
}

void HttpServer::get(const std::string& path, Handler handler, Access access) {
  http_.Get(path, wrap(std::move(handler), access));
}

void HttpServer::post(const std::string& path, Handler handler, Access access) {
  http_.Post(path, wrap(std::move(handler), access));
}

int HttpServer::bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(options_.host);
    if (port < 0) throw std::runtime_error("cannot listen on " + options_.host);
  } else if (!http_.bind_to_port(options_.host, port)) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(port));
  }
  return port;
}

void HttpServer::run() { http_.listen_after_bind(); }

void HttpServer::stop() { http_.stop(); }

namespace {

// An address as cpp-httplib writes it (numeric host) and its port.
std::optional<std::pair<std::string, int>> address_of(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(a);
    if (!inet_ntop(AF_INET, &in.sin_addr, host, sizeof host)) return std::nullopt;
    return std::pair<std::string, int>{host, ntohs(in.sin_port)};
  }
  if (a.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (!inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host)) return std::nullopt;
    return std::pair<std::string, int>{host, ntohs(in6.sin6_port)};
  }
  return std::nullopt;
}

bool socket_is(int fd, const httplib::Request& req) {
  sockaddr_storage local{}, peer{};
  socklen_t local_len = sizeof local, peer_len = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) return false;
  const auto l = address_of(local);
  const auto p = address_of(peer);
  return l && p && l->second == req.local_port && p->second == req.remote_port && l->first == req.local_addr &&
         p->first == req.remote_addr;
}

}  // namespace

ConnectionWatch::ConnectionWatch(const httplib::Request& req) {
  // The handler's thread owns the connection until it returns, so the descriptor found here
  // stays this connection's for the watch's life (a TCP address pair is unique while open).
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    if (socket_is(fd, req)) {
      fd_ = fd;
      return;
    }
  }
}

bool ConnectionWatch::closed() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace ponder::server
