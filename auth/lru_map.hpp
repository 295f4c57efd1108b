#pragma once
// A string-keyed map that keeps its entries in order of last use, so the least
// recently used one can be found and dropped in O(1) (bounded tables).
#include <iterator>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sw::auth {

template <class V>
class LruMap {
 public:
  struct Item {
    std::string key;
    V value;
  };

  LruMap() = default;
  LruMap(const LruMap&) = delete;  // the index holds views into the items' keys
  LruMap& operator=(const LruMap&) = delete;

  V* find(std::string_view key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->value;
  }
  // Like find, and makes the entry the most recently used.
  V* use(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    items_.splice(items_.end(), items_, it->second);
    return &it->second->value;
  }
  // key must be absent; it becomes the most recently used.
  V& add(std::string_view key, V value) {
    items_.push_back(Item{std::string(key), std::move(value)});
    index_.emplace(items_.back().key, std::prev(items_.end()));
    return items_.back().value;
  }
  void erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    auto item = it->second;
    index_.erase(it);
    items_.erase(item);
  }
  const Item& oldest() const { return items_.front(); }
  void drop_oldest() { erase(items_.front().key); }
  template <class Pred>
  void erase_if(Pred pred) {
    for (auto it = items_.begin(); it != items_.end();) {
      if (!pred(it->value)) {
        ++it;
        continue;
      }
      index_.erase(it->key);
      it = items_.erase(it);
    }
  }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  std::list<Item> items_;  // least recently used first
  std::unordered_map<std::string_view, typename std::list<Item>::iterator> index_;
};

}  // namespace sw::auth
