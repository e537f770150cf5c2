//! The vocabulary demo products are made of: the category tree with the materials and
//! nouns each root sells, vendor and brand names, adjectives, colours, phrases. Data only.

pub struct Root {
    pub name: &'static str,
    pub children: &'static [&'static str],
    pub materials: &'static [&'static str],
    pub nouns: &'static [&'static str],
}

pub const LEAF_KINDS: [&str; 3] = ["Everyday", "Premium", "Vintage"];

pub const TREE: &[Root] = &[
    Root {
        name: "Home & Kitchen",
        children: &["Cookware", "Tableware", "Knives"],
        materials: &["Cast Iron", "Ceramic", "Steel", "Oak", "Copper"],
        nouns: &["Pan", "Bowl", "Knife", "Teapot", "Cutting Board", "Mug"],
    },
    Root {
        name: "Fashion",
        children: &["Shirts", "Shoes", "Bags"],
        materials: &["Linen", "Leather", "Cotton", "Wool", "Canvas"],
        nouns: &["Shirt", "Sneaker", "Tote", "Boot", "Scarf", "Jacket"],
    },
    Root {
        name: "Garden",
        children: &["Tools", "Planters", "Furniture"],
        materials: &["Terracotta", "Teak", "Galvanised", "Bamboo", "Stone"],
        nouns: &[
            "Trowel",
            "Planter",
            "Bench",
            "Watering Can",
            "Pruner",
            "Lantern",
        ],
    },
    Root {
        name: "Electronics",
        children: &["Audio", "Lighting", "Accessories"],
        materials: &["Aluminium", "Walnut", "Matte", "Glass", "Recycled"],
        nouns: &["Speaker", "Lamp", "Charger", "Headphones", "Cable", "Clock"],
    },
    Root {
        name: "Sports",
        children: &["Cycling", "Hiking", "Yoga"],
        materials: &["Carbon", "Merino", "Cork", "Nylon", "Rubber"],
        nouns: &["Bottle", "Backpack", "Mat", "Helmet", "Jersey", "Pole"],
    },
    Root {
        name: "Books & Stationery",
        children: &["Notebooks", "Pens", "Prints"],
        materials: &["Paper", "Brass", "Recycled", "Cloth", "Kraft"],
        nouns: &[
            "Notebook",
            "Fountain Pen",
            "Planner",
            "Print",
            "Bookmark",
            "Journal",
        ],
    },
];

pub const VENDOR_NAMES: &[&str] = &[
    "Atlas Outfitters",
    "Bazaar Nord",
    "Cedar & Clay",
    "Dune Supply",
    "Ember Goods",
    "Fjord Living",
    "Granite Works",
    "Harbor Trade",
    "Iris Atelier",
    "Juniper House",
    "Kiln Collective",
    "Lumen Store",
];
pub const BRANDS: &[&str] = &[
    "Acme",
    "Nordlys",
    "Tavola",
    "Kestrel",
    "Sora",
    "Brightline",
    "Oakhaven",
    "Miro",
    "Vela",
    "Quarry",
    "Halden",
    "Pico",
    "Rivet",
    "Solace",
    "Tundra",
    "Umber",
];
pub const ADJECTIVES: &[&str] = &[
    "Classic",
    "Compact",
    "Handmade",
    "Everyday",
    "Heritage",
    "Minimal",
    "Rugged",
    "Deluxe",
    "Essential",
    "Signature",
    "Travel",
    "Studio",
    "Modern",
    "Coastal",
    "Alpine",
    "Urban",
];
pub const COLOURS: &[&str] = &[
    "black", "white", "red", "blue", "green", "sand", "grey", "olive", "navy", "amber",
];
pub const QUALITIES: &[&str] = &[
    "built to last",
    "light to carry",
    "easy to clean",
    "made in small batches",
    "designed for daily use",
    "repairable",
    "gentle on the planet",
    "a favourite of our customers",
];
pub const ORIGINS: &[&str] = &[
    "Portugal", "Morocco", "Japan", "Sweden", "Italy", "Vietnam", "Mexico", "Germany",
];
pub const CLOSERS: &[&str] = &[
    "Ships in recycled packaging.",
    "Comes with a two-year warranty.",
    "Care instructions are included.",
    "Pairs well with the rest of the range.",
];
