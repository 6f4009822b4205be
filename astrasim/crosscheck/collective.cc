// astrasim crosscheck: run one message schedule (a collective decomposed by
// astrasim.network.collectives.plan) over TCP on an ns-3 network and print when it ends.
//
// Networks: "wifi" (one 802.11 BSS: an access point and N stations, fixed MCS), "adhoc" (N
// stations, no AP) and "switch" (N hosts on full-duplex point-to-point links to one IP
// router). Built by astrasim/crosscheck/build.py against the ns3 wheel's headers and libraries.
//
// Schedule file: first line the message count M, then one line per message:
//   src dst bytes ndeps dep1 dep2 ...
// A message leaves its source once all its deps are delivered; bytes of the messages of one
// (src, dst) pair travel in release order on one TCP connection opened before the timed window.
//
// Output (stdout): "elapsed_s <seconds from the release of the first messages to the last
// delivery>", "delivered <k> <M>", then "msg <id> <release_s> <delivered_s>" lines; with
// --trace also "tx <t_s> <node> <duration_s> <psdu_bytes> <n_mpdus> <frame type> <mode>" per PSDU.
#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/mobility-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/wifi-module.h"

#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <vector>

using namespace ns3;

namespace
{
struct Message
{
    int src, dst;
    uint64_t bytes;
    std::vector<int> children;
    int waiting = 0;  // deps not yet delivered
    double released = -1, delivered = -1;
};

struct Connection
{
    Ptr<Socket> tx;
    uint64_t unsent = 0;  // bytes released but not yet handed to the socket
    std::deque<std::pair<int, uint64_t>> inflight;  // (message, bytes still to arrive), in order
    bool connected = false;
};

std::vector<Message> g_msgs;
std::map<std::pair<int, int>, Connection> g_conns;
std::map<uint32_t, int> g_hostOfAddress;  // IPv4 address -> host index
std::vector<Ipv4Address> g_addressOf;     // host index -> IPv4 address
NodeContainer g_hosts;
int g_delivered = 0, g_connected = 0;
double g_t0 = 0, g_last = 0;

void Pump(Connection& c)
{
    while (c.unsent > 0)
    {
        uint32_t room = c.tx->GetTxAvailable();
        if (room == 0)
            return;
        uint32_t k = static_cast<uint32_t>(std::min<uint64_t>({c.unsent, room, 1u << 16}));
        int sent = c.tx->Send(Create<Packet>(k));
        if (sent <= 0)
            return;
        c.unsent -= sent;
    }
}

void Release(int m)
{
    Message& msg = g_msgs[m];
    msg.released = Simulator::Now().GetSeconds();
    Connection& c = g_conns.at({msg.src, msg.dst});
    c.inflight.emplace_back(m, msg.bytes);
    c.unsent += msg.bytes;
    Pump(c);
}

void Deliver(int m)
{
    Message& msg = g_msgs[m];
    msg.delivered = Simulator::Now().GetSeconds();
    g_last = msg.delivered;
    if (++g_delivered == static_cast<int>(g_msgs.size()))
        Simulator::Stop();
    for (int child : msg.children)
        if (--g_msgs[child].waiting == 0)
            Release(child);
}

void OnReceive(std::pair<int, int> key, Ptr<Socket> s)
{
    Connection& c = g_conns.at(key);
    while (Ptr<Packet> p = s->Recv())
    {
        uint64_t n = p->GetSize();
        while (n > 0 && !c.inflight.empty())
        {
            auto& front = c.inflight.front();
            uint64_t k = std::min(n, front.second);
            front.second -= k;
            n -= k;
            if (front.second == 0)
            {
                int m = front.first;
                c.inflight.pop_front();
                Deliver(m);
            }
        }
    }
}

void OnAccept(int dst, Ptr<Socket> s, const Address& from)
{
    int src = g_hostOfAddress.at(InetSocketAddress::ConvertFrom(from).GetIpv4().Get());
    s->SetRecvCallback(MakeBoundCallback(&OnReceive, std::make_pair(src, dst)));
}

void StartTimedWindow();

void OnConnected(std::pair<int, int> key, Ptr<Socket>)
{
    g_conns.at(key).connected = true;
    if (++g_connected == static_cast<int>(g_conns.size()))  // settle, then time
        Simulator::Schedule(MilliSeconds(100), &StartTimedWindow);
}

void OnConnectFailed(Ptr<Socket>)
{
    std::fprintf(stderr, "a TCP connection failed to open\n");
}

void CheckConnected()
{
    if (g_connected != static_cast<int>(g_conns.size()))
    {
        std::printf("error only %d of %zu connections open after 10 s\n", g_connected, g_conns.size());
        Simulator::Stop();
    }
}

void StartTimedWindow()
{
    g_t0 = Simulator::Now().GetSeconds();
    for (size_t m = 0; m < g_msgs.size(); ++m)
        if (g_msgs[m].waiting == 0)
            Release(static_cast<int>(m));
}

void TracePsdu(int node, WifiPhyBand band, WifiConstPsduMap psdus, WifiTxVector tx, double)
{
    for (auto& [staId, psdu] : psdus)
    {
        Time d = WifiPhy::CalculateTxDuration(psdu->GetSize(), tx, band, staId);
        std::printf("tx %.9f %d %.9f %zu %zu %s %s\n", Simulator::Now().GetSeconds(), node, d.GetSeconds(),
                    static_cast<size_t>(psdu->GetSize()), psdu->GetNMpdus(),
                    psdu->GetHeader(0).GetTypeString(), tx.GetMode().GetUniqueName().c_str());
    }
}

bool ReadSchedule(const std::string& path, int hosts)
{
    std::ifstream in(path);
    size_t count = 0;
    if (!(in >> count))
        return false;
    g_msgs.resize(count);
    for (size_t m = 0; m < count; ++m)
    {
        Message& msg = g_msgs[m];
        int ndeps = 0;
        if (!(in >> msg.src >> msg.dst >> msg.bytes >> ndeps) || msg.src < 0 || msg.dst < 0 ||
            msg.src >= hosts || msg.dst >= hosts || msg.src == msg.dst)
            return false;
        for (int k = 0; k < ndeps; ++k)
        {
            size_t d;
            if (!(in >> d) || d >= m)
                return false;
            g_msgs[d].children.push_back(static_cast<int>(m));
        }
        msg.waiting = ndeps;
        g_conns[{msg.src, msg.dst}];
    }
    return true;
}

WifiStandard StandardOf(const std::string& s)
{
    if (s == "n")
        return WIFI_STANDARD_80211n;
    if (s == "ac")
        return WIFI_STANDARD_80211ac;
    if (s == "ax")
        return WIFI_STANDARD_80211ax;
    NS_FATAL_ERROR("standard must be n, ac or ax");
}

std::string ModeName(const std::string& standard, int mcs, int nss)
{
    if (standard == "n")  // HT MCS numbers include the stream count: 0-7 one stream, 8-15 two ...
        return "HtMcs" + std::to_string(mcs + 8 * (nss - 1));
    return (standard == "ac" ? "VhtMcs" : "HeMcs") + std::to_string(mcs);
}
}  // namespace

int main(int argc, char* argv[])
{
    std::string mode = "wifi", standard = "n", schedule;
    int hosts = 2, width = 20, mcs = 7, nss = 1, guardNs = 800;
    uint32_t seed = 1, maxAmpdu = 65535;
    double linkMbps = 100, linkDelayUs = 25, maxSeconds = 300;
    bool trace = false;
    CommandLine cmd;
    cmd.AddValue("mode", "wifi | adhoc | switch", mode);
    cmd.AddValue("hosts", "stations / hosts N", hosts);
    cmd.AddValue("standard", "n | ac | ax", standard);
    cmd.AddValue("width", "channel width MHz", width);
    cmd.AddValue("mcs", "MCS index (per stream)", mcs);
    cmd.AddValue("nss", "spatial streams", nss);
    cmd.AddValue("guardNs", "guard interval ns (800, or 400 short GI; HE: 800/1600/3200)", guardNs);
    cmd.AddValue("maxAmpdu", "largest A-MPDU in bytes (0: no aggregation)", maxAmpdu);
    cmd.AddValue("linkMbps", "switch: port line rate", linkMbps);
    cmd.AddValue("linkDelayUs", "switch: propagation delay per link", linkDelayUs);
    cmd.AddValue("seed", "ns-3 run number (independent random streams)", seed);
    cmd.AddValue("maxSeconds", "give up after this much simulated time", maxSeconds);
    cmd.AddValue("schedule", "message schedule file", schedule);
    cmd.AddValue("trace", "print every PSDU sent", trace);
    cmd.Parse(argc, argv);
    if (hosts < 2 || !ReadSchedule(schedule, hosts))
    {
        std::fprintf(stderr, "bad --hosts or --schedule %s\n", schedule.c_str());
        return 2;
    }
    RngSeedManager::SetSeed(1);
    RngSeedManager::SetRun(seed);

    // TCP as a Linux host runs it: 1500-byte MTU (MSS 1448 with timestamps), 200 ms minimum RTO,
    // delayed ACKs of at most 40 ms (well below the RTO), no Nagle (collective libraries set it).
    Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(1448));
    Config::SetDefault("ns3::TcpSocket::DelAckTimeout", TimeValue(MilliSeconds(40)));
    Config::SetDefault("ns3::TcpSocket::TcpNoDelay", BooleanValue(true));
    Config::SetDefault("ns3::TcpSocketBase::MinRto", TimeValue(MilliSeconds(200)));
    Config::SetDefault("ns3::WifiNetDevice::Mtu", UintegerValue(1500));

    NodeContainer& hostNodes = g_hosts;
    hostNodes.Create(hosts);
    InternetStackHelper internet;
    internet.Install(hostNodes);
    std::vector<Ipv4Address>& addressOf = g_addressOf;
    addressOf.resize(hosts);

    if (mode == "wifi" || mode == "adhoc")
    {
        NodeContainer ap;
        if (mode == "wifi")
        {
            ap.Create(1);
            internet.Install(ap);
        }
        YansWifiChannelHelper channel = YansWifiChannelHelper::Default();
        YansWifiPhyHelper phy;
        phy.SetChannel(channel.Create());
        phy.Set("ChannelSettings", StringValue("{0, " + std::to_string(width) + ", BAND_5GHZ, 0}"));
        phy.Set("Antennas", UintegerValue(nss));
        phy.Set("MaxSupportedTxSpatialStreams", UintegerValue(nss));
        phy.Set("MaxSupportedRxSpatialStreams", UintegerValue(nss));
        WifiHelper wifi;
        wifi.SetStandard(StandardOf(standard));
        wifi.SetRemoteStationManager("ns3::ConstantRateWifiManager", "DataMode",
                                     StringValue(ModeName(standard, mcs, nss)), "ControlMode",
                                     StringValue(ModeName(standard, 0, 1)));
        WifiMacHelper mac;
        Ssid ssid("astrasim");
        if (mode == "wifi")
            mac.SetType("ns3::StaWifiMac", "Ssid", SsidValue(ssid), "BE_MaxAmpduSize", UintegerValue(maxAmpdu), "BE_BlockAckThreshold", UintegerValue(1));
        else
            mac.SetType("ns3::AdhocWifiMac", "BE_MaxAmpduSize", UintegerValue(maxAmpdu), "BE_BlockAckThreshold", UintegerValue(1));
        NetDeviceContainer devices = wifi.Install(phy, mac, hostNodes);
        if (mode == "wifi")
        {
            mac.SetType("ns3::ApWifiMac", "Ssid", SsidValue(ssid), "BE_MaxAmpduSize", UintegerValue(maxAmpdu), "BE_BlockAckThreshold", UintegerValue(1));
            devices.Add(wifi.Install(phy, mac, ap));
        }
        if (standard == "ax")
            Config::Set("/NodeList/*/DeviceList/*/$ns3::WifiNetDevice/HeConfiguration/GuardInterval",
                        TimeValue(NanoSeconds(guardNs)));
        else
            Config::Set("/NodeList/*/DeviceList/*/$ns3::WifiNetDevice/HtConfiguration/ShortGuardIntervalSupported",
                        BooleanValue(guardNs == 400));
        MobilityHelper mobility;  // the AP at the origin, stations 1 m around it: no hidden node, no loss
        Ptr<ListPositionAllocator> where = CreateObject<ListPositionAllocator>();
        for (int i = 0; i < hosts; ++i)
            where->Add(Vector(std::cos(2 * M_PI * i / hosts), std::sin(2 * M_PI * i / hosts), 0));
        where->Add(Vector(0, 0, 0));
        mobility.SetPositionAllocator(where);
        mobility.SetMobilityModel("ns3::ConstantPositionMobilityModel");
        mobility.Install(hostNodes);
        if (mode == "wifi")
            mobility.Install(ap);
        Ipv4AddressHelper ipv4("10.1.0.0", "255.255.0.0");
        Ipv4InterfaceContainer ifs = ipv4.Assign(devices);
        for (int i = 0; i < hosts; ++i)
            addressOf[i] = ifs.GetAddress(i);
        NeighborCacheHelper().PopulateNeighborCache();  // no ARP exchange inside the timed window
        if (trace)
            for (uint32_t i = 0; i < devices.GetN(); ++i)
            {
                Ptr<WifiPhy> p = DynamicCast<WifiNetDevice>(devices.Get(i))->GetPhy();
                p->TraceConnectWithoutContext("PhyTxPsduBegin",
                                              MakeBoundCallback(&TracePsdu, static_cast<int>(i), p->GetPhyBand()));
            }
    }
    else if (mode == "switch")
    {
        NodeContainer router;
        router.Create(1);
        internet.Install(router);
        PointToPointHelper link;
        link.SetDeviceAttribute("DataRate", DataRateValue(DataRate(linkMbps * 1e6)));
        link.SetChannelAttribute("Delay", TimeValue(MicroSeconds(linkDelayUs)));
        for (int i = 0; i < hosts; ++i)
        {
            NetDeviceContainer d = link.Install(hostNodes.Get(i), router.Get(0));
            Ipv4AddressHelper ipv4(("10.2." + std::to_string(i) + ".0").c_str(), "255.255.255.0");
            addressOf[i] = ipv4.Assign(d).GetAddress(0);
        }
        Ipv4GlobalRoutingHelper::PopulateRoutingTables();
    }
    else
    {
        std::fprintf(stderr, "--mode must be wifi, adhoc or switch\n");
        return 2;
    }
    for (int i = 0; i < hosts; ++i)
        g_hostOfAddress[addressOf[i].Get()] = i;

    const uint16_t port = 5000;
    for (int i = 0; i < hosts; ++i)
    {
        Ptr<Socket> listener = Socket::CreateSocket(hostNodes.Get(i), TcpSocketFactory::GetTypeId());
        listener->Bind(InetSocketAddress(Ipv4Address::GetAny(), port));
        listener->Listen();
        listener->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                                    MakeBoundCallback(&OnAccept, i));
    }
    // Open every connection the schedule uses before the timed window (association is over by
    // then), 2 ms apart so the handshakes do not collide, so neither the handshake nor the Block
    // Ack setup is timed; the window opens 100 ms after the last one is established.
    double open = mode == "switch" ? 0.1 : 1.0;
    int order = 0;
    for (auto& [key, c] : g_conns)
    {
        auto k = key;
        Simulator::Schedule(Seconds(open) + MilliSeconds(2 * order++), [k, port]() {
            Connection& c = g_conns.at(k);
            c.tx = Socket::CreateSocket(g_hosts.Get(k.first), TcpSocketFactory::GetTypeId());
            c.tx->Bind();
            c.tx->SetAttribute("ConnTimeout", TimeValue(MilliSeconds(500)));
            c.tx->SetConnectCallback(MakeBoundCallback(&OnConnected, k), MakeCallback(&OnConnectFailed));
            c.tx->SetSendCallback(MakeBoundCallback(
                +[](std::pair<int, int> key, Ptr<Socket>, uint32_t) { Pump(g_conns.at(key)); }, k));
            c.tx->Connect(InetSocketAddress(g_addressOf[k.second], port));
        });
    }
    Simulator::Schedule(Seconds(open + 10.0), &CheckConnected);
    Simulator::Stop(Seconds(open + 10.0 + maxSeconds));
    Simulator::Run();
    std::printf("elapsed_s %.9f\n", g_last - g_t0);
    std::printf("delivered %d %zu\n", g_delivered, g_msgs.size());
    for (size_t m = 0; m < g_msgs.size(); ++m)
        std::printf("msg %zu %.9f %.9f\n", m, g_msgs[m].released - g_t0, g_msgs[m].delivered - g_t0);
    Simulator::Destroy();
    return g_delivered == static_cast<int>(g_msgs.size()) ? 0 : 1;
}
