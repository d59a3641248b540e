// The HTTP side of `ponder serve`: cpp-httplib behind a small class that API modules add their
// routes to, with what every route shares: the API key, a body size limit, JSON error bodies in
// OpenAI's shape, and telling whether the client is still connected.
//
// An API module is a function of its own file that registers handlers before run(), e.g.
//   void add_story_routes(HttpServer& http, SearchService& searches, ...) {
//     http.get("/story", [](const httplib::Request&, httplib::Response& res) { ... },
//              HttpServer::Access::kPublic);
//     http.post("/v1/stories", [&searches](const auto& req, auto& res) {
//       const nlohmann::json body = parse_json_object(req);  // ApiError 400 if not an object
//       ...; send_json(res, 200, reply);
//     });
//   }
// and serve_command.cpp calls it beside add_openai_routes (openai_api.h).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ponder::server {

// An error a handler answers with: its status and the OpenAI error body
// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "");
  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string type_, param_, code_;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;           // 0: a free port, chosen when bind() runs
  std::string api_key;       // when set, routes not made public need "Authorization: Bearer KEY"
  size_t max_body = 1 << 20; // bytes; a larger request body gets 413
  // Connections served at once; more wait for a free thread (cpp-httplib's pool). A request
  // holds its thread while its search runs, so this must exceed the searches that may wait.
  int threads = 16;
};

class HttpServer {
 public:
  // A route's handler. It may throw ApiError (answered with its status and body); any other
  // exception is answered with 500 and its message. Handlers run on the pool's threads,
  // several at once.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  enum class Access { kKey, kPublic };  // kPublic: no API key needed (a health check)

  explicit HttpServer(HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes, before run(). `path` is matched whole (a std::regex, as cpp-httplib matches it).
  void get(const std::string& path, Handler handler, Access access = Access::kKey);
  void post(const std::string& path, Handler handler, Access access = Access::kKey);

  // Binds host:port; returns the port (the chosen one for port 0). Throws std::runtime_error.
  int bind();
  // Serves until stop(); after bind().
  void run();
  // From any thread: run() returns once the requests being handled are done.
  void stop();

 private:
  bool authorized(const httplib::Request& req) const;
  Handler wrap(Handler handler, Access access);

  HttpOptions options_;
  httplib::Server http_;
};

// A JSON object from the request body; ApiError 400 when it is not one.
nlohmann::json parse_json_object(const httplib::Request& req);

// Replies with `body` as JSON (invalid UTF-8 in strings replaced, never thrown).
void send_json(httplib::Response& res, int status, const nlohmann::json& body);

// Whether the client that sent a request has closed its connection, asked while the request is
// being handled (cpp-httplib 0.11 offers no such call: this finds the connection's socket by its
// addresses, among this process's descriptors, and polls it for a hang-up). A client that only
// shuts down its sending side after the request counts as gone too (HTTP clients do not).
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req);
  // True once the peer hung up (or the socket failed). False when the socket was not found.
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace ponder::server
