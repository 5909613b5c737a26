"""Word lists for plausible fake content in English and Chinese."""

from __future__ import annotations

from typing import Final

# (slug, English, Chinese): concept aspects; ids come from the slug.
ASPECTS: Final[list[tuple[str, str, str]]] = [
    ("foundations", "Foundations", "基础概念"),
    ("environment-setup", "Environment setup", "环境搭建"),
    ("core-syntax", "Core syntax", "核心语法"),
    ("key-terminology", "Key terminology", "关键术语"),
    ("data-representation", "Data representation", "数据表示"),
    ("control-flow", "Control flow", "控制流程"),
    ("building-blocks", "Building blocks", "基本构件"),
    ("tooling", "Tooling", "工具链"),
    ("error-handling", "Error handling", "错误处理"),
    ("testing", "Testing", "测试"),
    ("debugging", "Debugging", "调试"),
    ("modularity", "Modularity", "模块化"),
    ("abstractions", "Abstractions", "抽象"),
    ("data-structures", "Data structures", "数据结构"),
    ("algorithms", "Algorithms", "算法"),
    ("memory-and-resources", "Memory and resources", "内存与资源"),
    ("concurrency", "Concurrency", "并发"),
    ("input-output", "Input and output", "输入与输出"),
    ("interfaces", "Interfaces", "接口"),
    ("libraries", "Libraries and ecosystem", "库与生态"),
    ("design-patterns", "Design patterns", "设计模式"),
    ("best-practices", "Best practices", "最佳实践"),
    ("performance", "Performance", "性能优化"),
    ("security", "Security", "安全"),
    ("project-structure", "Project structure", "项目结构"),
    ("documentation", "Documentation", "文档编写"),
    ("collaboration", "Collaboration workflows", "协作流程"),
    ("automation", "Automation", "自动化"),
    ("deployment", "Deployment", "部署"),
    ("monitoring", "Monitoring", "监控"),
    ("troubleshooting", "Troubleshooting", "故障排查"),
    ("integration", "Integration", "集成"),
    ("real-world-cases", "Real-world cases", "真实案例"),
    ("advanced-techniques", "Advanced techniques", "高级技巧"),
    ("internals", "Internals", "内部原理"),
    ("optimisation", "Optimisation", "优化"),
    ("architecture", "Architecture", "架构"),
    ("scaling", "Scaling up", "规模化"),
    ("mini-project", "Mini project", "小型项目"),
    ("capstone-project", "Capstone project", "综合项目"),
    ("review", "Review and next steps", "复习与展望"),
]

STAGES: Final[list[tuple[str, str]]] = [
    ("Getting started", "入门"),
    ("Building the basics", "打好基础"),
    ("Core skills", "核心技能"),
    ("Applying it", "实践应用"),
    ("Going deeper", "深入理解"),
    ("Real projects", "真实项目"),
    ("Advanced practice", "进阶实践"),
    ("Mastery", "精通"),
]

MODULE_THEMES: Final[list[tuple[str, str]]] = [
    ("Essentials", "要点"),
    ("Hands-on practice", "动手实践"),
    ("Applied work", "应用练习"),
    ("Deep dive", "深入探究"),
    ("Workshop", "实战工坊"),
]

GOAL_PREFIXES: Final[tuple[str, ...]] = (
    "i want to learn ",
    "i want to ",
    "get started with ",
    "getting started with ",
    "learn how to ",
    "learn about ",
    "learn ",
    "master ",
    "study ",
    "understand ",
    "become good at ",
    "我想学习",
    "我想学",
    "学习",
    "学会",
    "掌握",
    "了解",
    "入门",
)

DOMAINS: Final[list[tuple[tuple[str, ...], str, str]]] = [
    (
        (
            "python",
            "rust",
            "java",
            "go ",
            "golang",
            "javascript",
            "typescript",
            "c++",
            "programming",
            "code",
            "software",
            "web",
            "backend",
            "frontend",
            "embedded",
            "编程",
            "开发",
        ),
        "Software development",
        "软件开发",
    ),
    (
        ("data", "machine learning", "statistics", "ai", "deep learning", "数据", "机器学习"),
        "Data science",
        "数据科学",
    ),
    (("design", "ux", "ui", "设计"), "Design", "设计"),
    (
        ("spanish", "english", "french", "japanese", "chinese", "language", "语言", "英语"),
        "Languages",
        "语言学习",
    ),
    (("finance", "accounting", "invest", "金融", "投资"), "Finance", "金融"),
]
