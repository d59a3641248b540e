// `ponder serve` as clients see it: the built binary on a free port, driven over loopback with
// cpp-httplib's client and raw sockets. Replies and usage against the search details, 4xx for
// bad input (and a fuzz loop of mutated requests) with the server healthy after, 429 when full,
// a client that goes away cancels its search, the API key, and a clean exit on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "serve_process.h"
#include "test_paths.h"

namespace {

using nlohmann::json;
using ponder::testing::build_file;
using ponder::testing::ServeProcess;
using ponder::testing::stories_model;
using ponder::testing::test_model;
using namespace std::chrono_literals;

// Small limits: every search a test (or the fuzz loop) can ask for is quick. One thread: on a
// busy machine llama.cpp's threads would wait for each other at every step.
std::vector<std::string> stories_args(std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"-m", stories_model(), "--threads", "1", "--max-n", "4", "--max-tokens", "24",
                                   "--max-prompt-tokens", "64"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

struct Reply {
  int status = 0;
  json body;
};

class Client {
 public:
  explicit Client(const ServeProcess& server, std::string key = "") : http_(server.host(), server.port()) {
    http_.set_read_timeout(120, 0);
    if (!key.empty()) http_.set_bearer_token_auth(key);
  }
  Reply post(const std::string& path, const std::string& body) {
    return reply(http_.Post(path, body, "application/json"));
  }
  Reply post(const std::string& path, const json& body) { return post(path, body.dump()); }
  Reply get(const std::string& path) { return reply(http_.Get(path)); }
  httplib::Client& http() { return http_; }

 private:
  static Reply reply(const httplib::Result& r) {
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  httplib::Client http_;
};

// The search counts /health reports.
json searches(Client& c) {
  const Reply h = c.get("/health");
  EXPECT_EQ(h.status, 200);
  return h.body.value("searches", json::object());
}

// Polls /health until `done` holds for its search counts; false after `timeout`.
bool health_until(Client& c, const std::function<bool(const json&)>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done(searches(c))) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void expect_openai_error(const Reply& r, int status, const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.body.dump();
  ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << r.body.dump();
  const json& e = r.body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << e.dump();
  EXPECT_TRUE(e["type"].is_string()) << e.dump();
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << e.dump();
  if (!param.empty()) EXPECT_EQ(e["param"], param) << e.dump();
}

// A TCP connection that writes raw bytes, for what an HTTP client will not send.
class RawConnection {
 public:
  RawConnection(const std::string& host, int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() { hang_up(); }
  bool ok() const { return fd_ >= 0; }
  void send_all(const std::string& bytes) {
    for (size_t off = 0; off < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early (a bad request line): fine
      off += static_cast<size_t>(n);
    }
  }
  void end_writing() { shutdown(fd_, SHUT_WR); }
  // Reads until `stop` holds for what arrived, the server closes, or `timeout` passes.
  std::string read(std::chrono::milliseconds timeout, const std::function<bool(const std::string&)>& stop = nullptr) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!(stop && stop(got))) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        timed_out_ = true;
        break;
      }
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  bool timed_out() const { return timed_out_; }
  void hang_up() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool timed_out_ = false;
};

std::string http_post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

// The status of a raw HTTP reply; 0 when it is not one.
int status_of(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return 0;
  const int s = std::atoi(reply.substr(9, 3).c_str());
  return s >= 100 && s <= 599 ? s : 0;
}

// A search that takes many seconds on stories260K (a minute on 2 busy cores): greedy, it never
// ends its story, so each of the 4 samples runs to 1500 tokens.
json slow_search(bool stream) {
  return {{"prompt", "Once upon a time"}, {"n", 4}, {"max_tokens", 1500}, {"temperature", 0}, {"stream", stream}};
}
std::vector<std::string> slow_args(std::vector<std::string> more) {
  std::vector<std::string> args = {"-m", stories_model(), "--threads", "1", "--max-n", "4", "--max-tokens", "1500",
                                   "--max-prompt-tokens", "16"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(Serve, CompletionsAndChatWithMajority) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), stories_args({"--parallel", "2"}));
  Client c(server);

  const Reply r = c.post("/v1/completions", json{{"prompt", "Once upon a time"},
                                                 {"model", "stories260K"},
                                                 {"strategy", "majority"},
                                                 {"n", 3},
                                                 {"seed", 7},
                                                 {"search_details", true}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_EQ(r.body["model"], "stories260K");
  ASSERT_EQ(r.body["choices"].size(), 1u);
  const json& d = r.body["ponder"];
  EXPECT_EQ(d["strategy"], "majority");
  EXPECT_EQ(d["n"], 3);
  EXPECT_EQ(d["seed"], 7);
  ASSERT_EQ(d["solutions"].size(), 3u);
  const int chosen = d["selections"]["chosen"]["solution"];
  ASSERT_GE(chosen, 0);
  EXPECT_EQ(r.body["choices"][0]["text"], d["solutions"][chosen]["text"]);
  // Usage is the search's: every sampled token, the prompt once, no verifier.
  int64_t sampled = 0;
  for (const json& s : d["solutions"]) sampled += s["tokens"].get<int64_t>();
  const json& u = r.body["usage"];
  EXPECT_EQ(u["completion_tokens"], sampled);
  EXPECT_EQ(u["completion_tokens"], d["usage"]["completion_tokens"]);
  EXPECT_EQ(u["prompt_tokens"], d["usage"]["prompt_tokens"]);
  EXPECT_GT(u["prompt_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(u["verifier_tokens"], 0);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int64_t>() + sampled);
  EXPECT_GE(d["usage"]["rounds"].get<int>(), 1);
  EXPECT_GT(d["usage"]["seconds"].get<double>(), 0.0);

  // Without a chat template the messages' contents, joined by blank lines, are the prompt: the
  // same greedy text as that completion.
  const json greedy = {{"temperature", 0}, {"n", 1}, {"max_tokens", 16}};
  json chat = greedy;
  chat["messages"] = {{{"role", "system"}, {"content", "Once upon a time"}},
                      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "there was"}}}}}};
  const Reply rc = c.post("/v1/chat/completions", chat);
  ASSERT_EQ(rc.status, 200) << rc.body.dump();
  EXPECT_EQ(rc.body["object"], "chat.completion");
  EXPECT_EQ(rc.body["choices"][0]["message"]["role"], "assistant");
  json text = greedy;
  text["prompt"] = "Once upon a time\n\nthere was";
  const Reply rt = c.post("/v1/completions", text);
  ASSERT_EQ(rt.status, 200) << rt.body.dump();
  EXPECT_FALSE(rt.body["choices"][0]["text"].get<std::string>().empty());
  EXPECT_EQ(rc.body["choices"][0]["message"]["content"], rt.body["choices"][0]["text"]);
  EXPECT_EQ(rc.body["usage"]["prompt_tokens"], rt.body["usage"]["prompt_tokens"]);
  EXPECT_EQ(rt.body["choices"][0]["finish_reason"], "length");  // 16 tokens of a longer story

  const Reply models = c.get("/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.body["data"][0]["id"], "stories260K");
  EXPECT_EQ(c.get("/v1/models/stories260K").status, 200);
  expect_openai_error(c.get("/v1/models/gpt-4"), 404, "model");
  EXPECT_EQ(searches(c)["completed"], 3);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, StreamsProgressThenTheAnswer) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), stories_args());
  RawConnection conn(server.host(), server.port());
  ASSERT_TRUE(conn.ok());
  const json body = {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                     {"n", 2},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}},
                     {"search_details", true}};
  conn.send_all(http_post("/v1/chat/completions", body.dump()));
  const std::string reply =
      conn.read(60s, [](const std::string& got) { return got.find("data: [DONE]") != std::string::npos; });
  ASSERT_EQ(status_of(reply), 200) << reply;
  EXPECT_NE(reply.find("Content-Type: text/event-stream"), std::string::npos);
  std::vector<json> events;
  for (size_t at = reply.find("data: {"); at != std::string::npos; at = reply.find("data: {", at + 1)) {
    events.push_back(json::parse(reply.substr(at + 6, reply.find('\n', at) - at - 6)));
  }
  ASSERT_GE(events.size(), 5u) << reply;
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  int progress = 0;
  json finish, usage;
  for (const json& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], events.front()["id"]);
    if (e.contains("usage")) {
      usage = e["usage"];
      EXPECT_TRUE(e["choices"].empty());
      continue;
    }
    const json& choice = e["choices"][0];
    if (e.contains("ponder") && e["ponder"].contains("progress")) {
      ++progress;
      EXPECT_TRUE(choice["delta"].empty());
      EXPECT_EQ(e["ponder"]["progress"]["target"], 2);
    }
    if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish = e;
  }
  EXPECT_EQ(progress, 2) << "one report as each of the 2 samples finishes";
  ASSERT_TRUE(finish.is_object());
  const json& d = finish["ponder"];
  EXPECT_EQ(content, d["solutions"][d["selections"]["chosen"]["solution"].get<int>()]["text"]);
  EXPECT_FALSE(content.empty());
  EXPECT_EQ(usage["completion_tokens"], d["usage"]["completion_tokens"]);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, BeamSearchAndBestOfNWithPrm) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  ServeProcess server(build_file("ponder"),
                      stories_args({"--prm", test_model("prm-llama3-tiny.gguf"), "--max-rounds", "4"}));
  Client c(server);
  for (const std::string strategy : {"beam", "dvts", "best-of-n"}) {
    SCOPED_TRACE(strategy);
    const Reply r = c.post("/v1/chat/completions",
                           json{{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                {"strategy", strategy},
                                {"n", 4},
                                {"beam_width", 2},
                                {"step_delimiter", "."},
                                {"aggregation", "min"},
                                {"search_details", true}});
    ASSERT_EQ(r.status, 200) << r.body.dump();
    const json& d = r.body["ponder"];
    EXPECT_EQ(d["strategy"], strategy);
    ASSERT_FALSE(d["solutions"].empty());
    for (const json& s : d["solutions"]) {
      ASSERT_FALSE(s["steps"].empty());
      for (const json& step : s["steps"]) EXPECT_TRUE(step.contains("score")) << s.dump();
    }
    const int chosen = d["selections"]["chosen"]["solution"];
    ASSERT_GE(chosen, 0);
    EXPECT_EQ(r.body["choices"][0]["message"]["content"], d["solutions"][chosen]["text"]);
    const json& u = r.body["usage"];
    EXPECT_GT(u["verifier_tokens"].get<int64_t>(), 0);
    EXPECT_EQ(u["verifier_tokens"], d["usage"]["verifier_tokens"]);
    EXPECT_EQ(u["completion_tokens"], d["usage"]["completion_tokens"]);
    EXPECT_GE(u["completion_tokens"].get<int64_t>(), d["solutions"][chosen]["tokens"].get<int64_t>());
    EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int64_t>() + u["completion_tokens"].get<int64_t>() +
                                     u["verifier_tokens"].get<int64_t>());
    if (strategy != "best-of-n") EXPECT_LE(d["usage"]["rounds"].get<int>(), 4);
  }
  // Streamed, a beam search's solution comes a step per chunk; the chunks join to its text.
  RawConnection conn(server.host(), server.port());
  const json body = {{"prompt", "Once upon a time"}, {"strategy", "beam"},  {"n", 2},
                     {"beam_width", 2},              {"step_delimiter", "."}, {"stream", true},
                     {"search_details", true}};
  conn.send_all(http_post("/v1/completions", body.dump()));
  const std::string reply =
      conn.read(60s, [](const std::string& got) { return got.find("data: [DONE]") != std::string::npos; });
  ASSERT_EQ(status_of(reply), 200) << reply;
  std::string text;
  int text_chunks = 0;
  json details;
  for (size_t at = reply.find("data: {"); at != std::string::npos; at = reply.find("data: {", at + 1)) {
    const json e = json::parse(reply.substr(at + 6, reply.find('\n', at) - at - 6));
    const std::string piece = e["choices"][0]["text"];
    text += piece;
    text_chunks += piece.empty() ? 0 : 1;
    if (e.contains("ponder") && e["ponder"].contains("solutions")) details = e["ponder"];
  }
  ASSERT_TRUE(details.is_object()) << reply;
  const json& solution = details["solutions"][details["selections"]["chosen"]["solution"].get<int>()];
  EXPECT_EQ(text, solution["text"]);
  // An empty step (a solution's last, when it ended at end-of-generation) sends no chunk.
  int nonempty_steps = 0;
  for (const json& step : solution["steps"]) nonempty_steps += step["text"].get<std::string>().empty() ? 0 : 1;
  EXPECT_EQ(text_chunks, nonempty_steps) << solution.dump();

  // Lookahead doubles the branches: n 4 with lookahead needs 8, over --max-n 4.
  expect_openai_error(
      c.post("/v1/completions", json{{"prompt", "a"}, {"strategy", "beam"}, {"n", 4}, {"lookahead", 1}}), 400, "n");
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

// Started with --confidence mean and no PRM, the server searches step by step by the generator's
// own confidence; lowest-group confidence scores whole solutions only.
TEST(Serve, BeamSearchByTheGeneratorsConfidence) {
  PONDER_REQUIRE_FILE(stories_model());
  {
    ServeProcess server(build_file("ponder"), stories_args({"--confidence", "mean", "--max-rounds", "4"}));
    Client c(server);
    const Reply r = c.post("/v1/completions", json{{"prompt", "Once upon a time"}, {"strategy", "dvts"}, {"n", 4},
                                                   {"beam_width", 2}, {"step_delimiter", "."}, {"search_details", true}});
    ASSERT_EQ(r.status, 200) << r.body.dump();
    const json& d = r.body["ponder"];
    ASSERT_FALSE(d["solutions"].empty());
    for (const json& s : d["solutions"]) {
      for (const json& step : s["steps"]) {
        EXPECT_GT(step["score"].get<double>(), 0.0) << s.dump();
        EXPECT_LE(step["score"].get<double>(), 1.0) << s.dump();
      }
    }
    EXPECT_EQ(r.body["usage"]["verifier_tokens"], 0);
    EXPECT_EQ(server.stop(), 0) << server.stderr_text();
  }
  ServeProcess server(build_file("ponder"), stories_args({"--confidence", "lowest-group"}));
  Client c(server);
  expect_openai_error(c.post("/v1/completions", json{{"prompt", "a"}, {"strategy", "beam"}, {"n", 2}}), 400,
                      "strategy");
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, ChatTemplateAndDefaultSystemPrompt) {
  PONDER_REQUIRE_FILE(test_model("qwen2-tiny.gguf"));
  ServeProcess server(build_file("ponder"), {"-m", test_model("qwen2-tiny.gguf"), "--threads", "1", "--n", "1", "--max-n", "2",
                                             "--max-tokens", "4", "--max-prompt-tokens", "512"});
  Client c(server);
  auto prompt_tokens = [&](const json& messages) {
    const Reply r = c.post("/v1/chat/completions", json{{"messages", messages}, {"n", 1}});
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body["usage"]["prompt_tokens"].get<int64_t>();
  };
  const json user = {{"role", "user"}, {"content", "What is 2+2?"}};
  const int64_t with_default = prompt_tokens(json::array({user}));
  const int64_t with_own = prompt_tokens(json::array({{{"role", "system"}, {"content", "Be brief."}}, user}));
  // The server's system prompt (the long math one) comes first only when the chat has none.
  EXPECT_GT(with_default, with_own + 50);
  // Both carry the template's turn markers around the question's few tokens.
  EXPECT_GT(with_own, 10);
  // A final assistant message is continued: its words join the prompt, and no end of turn
  // follows them (the next turn's header would be longer than these few tokens).
  const int64_t continued = prompt_tokens(json::array(
      {{{"role", "system"}, {"content", "Be brief."}}, user, {{"role", "assistant"}, {"content", "It is"}}}));
  EXPECT_GE(continued, with_own + 1);
  EXPECT_LE(continued, with_own + 4);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, MalformedRequestsGetOpenAiErrors) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), stories_args({"--max-body", "4096"}));
  Client c(server);
  const std::string chat = "/v1/chat/completions", text = "/v1/completions";
  const json user = {{{"role", "user"}, {"content", "hi"}}};
  struct Case {
    std::string path;
    std::string body;
    int status;
    std::string param;
  };
  const std::vector<Case> cases = {
      {text, "", 400, ""},
      {text, "{\"prompt\": ", 400, ""},
      {text, "[1, 2]", 400, ""},
      {text, "\"a string\"", 400, ""},
      {text, "{}", 400, "prompt"},
      {text, R"({"prompt": 5})", 400, "prompt"},
      {text, R"({"prompt": ["a", "b"]})", 400, "prompt"},
      {text, R"({"prompt": "a", "n": "3"})", 400, "n"},
      {text, R"({"prompt": "a", "n": 0})", 400, "n"},
      {text, R"({"prompt": "a", "n": 5})", 400, "n"},
      {text, R"({"prompt": "a", "n": 1.5})", 400, "n"},
      {text, R"({"prompt": "a", "n": 18446744073709551615})", 400, "n"},
      {text, R"({"prompt": "a", "n": -9223372036854775808})", 400, "n"},
      {text, R"({"prompt": "a", "max_tokens": 25})", 400, "max_tokens"},
      {text, R"({"prompt": "a", "max_completion_tokens": 0})", 400, "max_completion_tokens"},
      {text, R"({"prompt": "a", "temperature": "hot"})", 400, "temperature"},
      {text, R"({"prompt": "a", "temperature": 1e308})", 400, "temperature"},
      {text, R"({"prompt": "a", "top_p": 0})", 400, "top_p"},
      {text, R"({"prompt": "a", "strategy": "monte-carlo"})", 400, "strategy"},
      {text, R"({"prompt": "a", "strategy": 3})", 400, "strategy"},
      {text, R"({"prompt": "a", "strategy": "beam"})", 400, "strategy"},        // no PRM
      {text, R"({"prompt": "a", "strategy": "best-of-n"})", 400, "strategy"},   // no verifier
      {text, R"({"prompt": "a", "lookahead": 1})", 400, "lookahead"},
      {text, R"({"prompt": "a", "aggregation": "max"})", 400, "aggregation"},
      {text, R"({"prompt": "a", "step_delimiter": ""})", 400, "step_delimiter"},
      {text, R"({"prompt": "a", "model": "gpt-4o"})", 400, "model"},
      {text, R"({"prompt": "a", "stop": ["\n"]})", 400, "stop"},
      {text, R"({"prompt": "a", "stream": "yes"})", 400, "stream"},
      {text, R"({"prompt": "a", "seed": "1"})", 400, "seed"},
      {text, R"({"prompt": "a", "stream_options": 1})", 400, "stream_options"},
      {text, json{{"prompt", std::string(2000, 'x')}}.dump(), 400, "prompt"},  // over --max-prompt-tokens
      {text, json{{"prompt", std::string(5000, 'x')}}.dump(), 413, ""},       // over --max-body
      {chat, "{}", 400, "messages"},
      {chat, R"({"messages": []})", 400, "messages"},
      {chat, R"({"messages": "hi"})", 400, "messages"},
      {chat, R"({"messages": [1]})", 400, "messages[0]"},
      {chat, R"({"messages": [{"content": "hi"}]})", 400, "messages[0].role"},
      {chat, R"({"messages": [{"role": "tool", "content": "hi"}]})", 400, "messages[0].role"},
      {chat, R"({"messages": [{"role": "user"}]})", 400, "messages[0].content"},
      {chat, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400, "messages[0].content"},
      {chat, R"({"messages": [{"role": "user", "content": {"text": "hi"}}]})", 400, "messages[0].content"},
      {chat, json{{"messages", user}, {"n", -1}}.dump(), 400, "n"},
      {chat, json{{"messages", user}, {"beam_width", 99}}.dump(), 400, "beam_width"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.path + " " + k.body.substr(0, 100));
    expect_openai_error(c.post(k.path, k.body), k.status, k.param);
  }
  expect_openai_error(c.get("/v1/nothing"), 404);
  expect_openai_error(c.get(chat), 404);  // no GET route there
  EXPECT_EQ(c.get("/health").status, 200);
  EXPECT_EQ(searches(c)["completed"], 0) << "no bad request ran a search";
  EXPECT_EQ(c.post(text, json{{"prompt", "Once"}}).status, 200);
  EXPECT_TRUE(server.alive());
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, FuzzedRequestsNeverBreakTheServer) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(
      build_file("ponder"),
      {"-m", stories_model(), "--threads", "1", "--n", "2", "--max-n", "2", "--max-tokens", "4", "--max-prompt-tokens", "32",
       "--max-body", "8192", "--parallel", "2", "--queue", "2"});
  Client c(server);
  std::mt19937 rng(20261123);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<json> seeds = {
      {{"prompt", "Once upon a time"}, {"n", 2}, {"max_tokens", 3}},
      {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"n", 1}, {"stream", true}},
      {{"messages", {{{"role", "system"}, {"content", "S"}}, {{"role", "user"}, {"content", "Q"}}}},
       {"strategy", "majority"},
       {"temperature", 0.5},
       {"top_p", 0.9},
       {"seed", 3},
       {"search_details", true}},
  };
  const std::vector<std::string> keys = {"prompt",      "messages", "n",         "max_tokens",     "temperature",
                                         "top_p",       "top_k",    "seed",      "strategy",       "beam_width",
                                         "lookahead",   "stream",   "model",     "step_delimiter", "aggregation",
                                         "max_rounds",  "stop",     "stream_options", "search_details"};
  const std::vector<json> values = {nullptr, true, 0, -1, 1, 2, 3, 1.5, -0.5, 1e300, 9223372036854775807LL,
                                    18446744073709551615ULL, "", "beam", "majority", "x", json::array(),
                                    json::array({1, "a"}), json::object(), json{{"include_usage", true}},
                                    std::string(300, 'z'), "\xff\xfe", "\n\n"};
  auto mutate_json = [&](json body) {
    for (size_t k = 1 + pick(3); k > 0; --k) {
      const std::string& key = keys[pick(keys.size())];
      if (pick(4) == 0) {
        body.erase(key);
      } else {
        body[key] = values[pick(values.size())];
      }
    }
    return body;
  };
  auto mutate_text = [&](std::string s) {
    for (size_t k = 1 + pick(4); k > 0 && !s.empty(); --k) {
      const size_t at = pick(s.size());
      switch (pick(4)) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + pick(8)); break;
        case 2: s.insert(at, 1, "{}[]\",:\\0\x80"[pick(11)]); break;
        default: s.resize(at); break;
      }
    }
    return s;
  };

  // Well-formed HTTP, bodies from mutated JSON: every reply a status the API documents, errors
  // with an OpenAI error body.
  std::map<int, int> statuses;
  for (int i = 0; i < 240; ++i) {
    const std::string path = pick(2) ? "/v1/completions" : "/v1/chat/completions";
    json body = mutate_json(seeds[pick(seeds.size())]);
    const std::string text = pick(3) == 0 ? mutate_text(body.dump(-1, ' ', false, json::error_handler_t::replace))
                                          : body.dump(-1, ' ', false, json::error_handler_t::replace);
    SCOPED_TRACE(path + " " + text.substr(0, 200));
    const httplib::Result r = c.http().Post(path, text, pick(5) ? "application/json" : "text/plain");
    ASSERT_TRUE(r) << "no reply";
    const int s = r->status;
    ++statuses[s];
    ASSERT_TRUE(s == 200 || s == 400 || s == 413 || s == 429) << s << " " << r->body;
    if (s != 200) {
      const json e = json::parse(r->body, nullptr, false);
      ASSERT_TRUE(e.is_object() && e.contains("error")) << r->body;
    }
  }

  // The mutations reach both the searches and the checks.
  EXPECT_GE(statuses[200], 20);
  EXPECT_GE(statuses[400], 20);

  // Malformed HTTP on raw sockets: a reply, when there is one, is an HTTP status; never a hang.
  const std::vector<std::string> raw_seeds = {
      http_post("/v1/completions", R"({"prompt": "Once", "n": 1})"),
      http_post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "stream": true})"),
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pro\r\nzz\r\n",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: -4\r\n\r\n{}",
      "GARBAGE\r\n\r\n",
      "GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nAuthorization: Bearer \x01\x02\r\nX: " + std::string(9000, 'h') + "\r\n\r\n",
  };
  for (int i = 0; i < 90; ++i) {
    std::string bytes = raw_seeds[pick(raw_seeds.size())];
    if (pick(3) != 0) bytes = mutate_text(bytes);
    SCOPED_TRACE(bytes.substr(0, 120));
    RawConnection conn(server.host(), server.port());
    ASSERT_TRUE(conn.ok());
    conn.send_all(bytes);
    conn.end_writing();
    const std::string reply = conn.read(20s);
    ASSERT_FALSE(conn.timed_out()) << "the server neither answered nor closed";
    if (!reply.empty()) ASSERT_NE(status_of(reply), 0) << reply.substr(0, 200);
  }

  ASSERT_TRUE(server.alive()) << server.stderr_text();
  EXPECT_TRUE(health_until(c, [](const json& s) { return s["running"] == 0 && s["queued"] == 0; }, 30s));
  EXPECT_EQ(c.post("/v1/completions", json{{"prompt", "Once"}}).status, 200);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

// Starts a slow streamed search on a raw connection and waits for its first event.
std::unique_ptr<RawConnection> start_slow_stream(ServeProcess& server) {
  auto conn = std::make_unique<RawConnection>(server.host(), server.port());
  conn->send_all(http_post("/v1/completions", slow_search(true).dump()));
  const std::string got = conn->read(30s, [](const std::string& s) { return s.find("data: ") != std::string::npos; });
  EXPECT_EQ(status_of(got), 200) << got;
  return conn;
}

TEST(Serve, BusyServerAnswers429) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), slow_args({"--parallel", "1", "--queue", "0"}));
  Client c(server);
  auto slow = start_slow_stream(server);
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 1; }, 10s));
  const Reply busy = c.post("/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 4}});
  expect_openai_error(busy, 429);
  EXPECT_EQ(busy.body["error"]["type"], "rate_limit_error");
  EXPECT_EQ(searches(c)["rejected"], 1);
  // Room again once the slow search is gone.
  slow->hang_up();
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 0; }, 10s));
  EXPECT_EQ(c.post("/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 4}}).status, 200);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, ClientThatHangsUpCancelsItsSearch) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), slow_args({"--parallel", "1", "--queue", "1"}));
  Client c(server);

  // Streamed: the search runs, the client goes, the search stops long before it would end.
  auto streamed = start_slow_stream(server);
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 1; }, 10s));
  // Not streamed, behind it in the queue: hanging up takes it out of the queue.
  RawConnection queued(server.host(), server.port());
  queued.send_all(http_post("/v1/completions", slow_search(false).dump()));
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["queued"] == 1; }, 10s));
  queued.hang_up();
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["queued"] == 0 && s["cancelled"] == 1; }, 5s))
      << searches(c).dump();
  EXPECT_EQ(searches(c)["running"], 1);
  streamed->hang_up();
  const auto hung_up = std::chrono::steady_clock::now();
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 0; }, 10s));
  const json s = searches(c);
  EXPECT_EQ(s["cancelled"], 2) << s.dump();
  EXPECT_EQ(s["completed"], 0) << s.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - hung_up, 3s);

  // Not streamed and running: the same.
  RawConnection running(server.host(), server.port());
  running.send_all(http_post("/v1/completions", slow_search(false).dump()));
  ASSERT_TRUE(health_until(c, [](const json& st) { return st["running"] == 1; }, 10s));
  running.hang_up();
  ASSERT_TRUE(health_until(c, [](const json& st) { return st["running"] == 0 && st["cancelled"] == 3; }, 5s))
      << searches(c).dump();
  EXPECT_EQ(searches(c)["completed"], 0);
  // Their branches went back to the engine: a search needing all of them (--max-n 4) runs.
  const Reply full = c.post("/v1/completions", json{{"prompt", "Once"}, {"n", 4}, {"max_tokens", 8}});
  EXPECT_EQ(full.status, 200) << full.body.dump();
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, ParallelSearchesRunAtOnce) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), slow_args({"--parallel", "2", "--queue", "0"}));
  Client c(server);
  auto first = start_slow_stream(server);
  auto second = start_slow_stream(server);
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 2; }, 10s)) << searches(c).dump();
  expect_openai_error(c.post("/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 4}}), 429);
  first->hang_up();
  second->hang_up();
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 0 && s["cancelled"] == 2; }, 10s))
      << searches(c).dump();
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, ApiKeyIsRequiredWhenSet) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), stories_args({"--api-key", "s3cret"}));
  Client anonymous(server), wrong(server, "s3cre"), right(server, "s3cret");
  expect_openai_error(anonymous.get("/v1/models"), 401);
  expect_openai_error(wrong.get("/v1/models"), 401);
  expect_openai_error(wrong.post("/v1/completions", json{{"prompt", "Once"}}), 401);
  EXPECT_EQ(anonymous.get("/health").status, 200);
  EXPECT_EQ(right.get("/v1/models").status, 200);
  EXPECT_EQ(right.post("/v1/completions", json{{"prompt", "Once"}}).status, 200);
  EXPECT_EQ(searches(right)["completed"], 1);
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

TEST(Serve, StopsOnSigtermWhileSearching) {
  PONDER_REQUIRE_FILE(stories_model());
  ServeProcess server(build_file("ponder"), slow_args({}));
  Client c(server);
  auto slow = start_slow_stream(server);
  ASSERT_TRUE(health_until(c, [](const json& s) { return s["running"] == 1; }, 10s));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "the running search is cancelled, not waited for";
  // The stream ends with an error event and [DONE].
  const std::string rest = slow->read(5s);
  EXPECT_NE(rest.find("\"error\""), std::string::npos) << rest;
}

TEST(Serve, BadFlagsFailAtStart) {
  PONDER_REQUIRE_FILE(stories_model());
  EXPECT_THROW(ServeProcess(build_file("ponder"), {"-m", stories_model(), "--strategy", "beam"}), std::runtime_error);
  EXPECT_THROW(ServeProcess(build_file("ponder"), {"-m", stories_model(), "--n", "8", "--max-n", "4"}),
               std::runtime_error);
}

}  // namespace
